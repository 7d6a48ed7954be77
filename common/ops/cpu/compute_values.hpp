/// @file compute_values.hpp
/// @brief Helpers of the CPU ops: accounted scratch arrays, compute-type views of stored data, exact conversions,
/// and the chunked loops of the elementwise ops.
///
/// The CPU ops store in any of float, double, Half, BFloat16 but do their arithmetic in ComputeType. Converting
/// a Half element by itself is a function call, so the ops convert whole spans (dtype_convert.hpp: eight values an
/// instruction where the CPU can) into compute-type values, work there, and round back once. Elementwise ops do
/// it a chunk of kChunkSize elements at a time, in arrays inside the views (no allocation); larger views take
/// accounted scratch. For float and double the views are the data itself: no copy.
#pragma once

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <type_traits>

#include "common/dtype.hpp"
#include "common/dtype_convert.hpp"
#include "common/error.hpp"
#include "common/memory.hpp"
#include "common/ops/cpu/worker_pool.hpp"

namespace ladder::ops::cpu {

/// An array of `count` elements of T in Workspace memory, zeroed unless asked not to be, freed when it goes out
/// of scope.
template <class T>
class Scratch {
 public:
  /// Allocates `count` elements (zero elements allocate nothing).
  explicit Scratch(std::int64_t count, BufferContents contents = BufferContents::Zeroed)
      : buffer_(static_cast<std::size_t>(count) * sizeof(T), MemoryCategory::Workspace, Device::CPU, contents) {}
  /// Start of the array.
  T* data() const { return static_cast<T*>(buffer_.data()); }
  /// Element `index`.
  T& operator[](std::int64_t index) const { return data()[index]; }

 private:
  Buffer buffer_;
};

/// True when storage type S must be converted to be computed with (Half, BFloat16).
template <class S>
inline constexpr bool kIsReducedPrecision = !std::is_same_v<S, ComputeType<S>>;

/// Reads `count` stored elements into compute values (fp16 and bf16 through the span conversions, which use the
/// CPU's conversion instructions where it has them).
template <class S>
void load_span(const S* source, ComputeType<S>* destination, std::int64_t count) {
  if constexpr (kIsReducedPrecision<S>) {
    widen_to_float(source, destination, count);
  } else {
    std::copy(source, source + count, destination);
  }
}

/// Rounds `count` compute values into storage.
template <class S>
void store_span(const ComputeType<S>* source, S* destination, std::int64_t count) {
  if constexpr (kIsReducedPrecision<S>) {
    round_from_float(source, destination, count);
  } else {
    std::copy(source, source + count, destination);
  }
}

/// Elements an elementwise op converts at a time: 1024 fp32 values are 4 KiB, which stay in L1 with their neighbours.
inline constexpr std::int64_t kChunkSize = 1024;

/// Room for the compute values of `count` stored elements: none for float and double (they are their own compute
/// values), an array inside the object for up to kChunkSize fp16/bf16 values, accounted Workspace beyond that.
template <class S>
class ConversionRoom {
 public:
  /// Makes room for `count` compute values.
  explicit ConversionRoom(std::int64_t count) : scratch_(kIsReducedPrecision<S> && count > kChunkSize ? count : 0) {}
  ConversionRoom(const ConversionRoom&) = delete;
  ConversionRoom& operator=(const ConversionRoom&) = delete;
  /// Start of the room.
  ComputeType<S>* data() { return scratch_.data() != nullptr ? scratch_.data() : in_place_.data(); }

 private:
  std::array<ComputeType<S>, kIsReducedPrecision<S> ? kChunkSize : 1> in_place_;
  Scratch<ComputeType<S>> scratch_;
};

/// The compute values of `count` stored elements: the storage itself for float and double, else the elements
/// widened into `room` (which must hold `count` values; for float and double it may be null).
template <class S>
const ComputeType<S>* compute_values_in(const S* source, ComputeType<S>* room, std::int64_t count) {
  if constexpr (kIsReducedPrecision<S>) {
    load_span(source, room, count);
    return room;
  } else {
    (void)room;
    (void)count;
    return source;
  }
}

/// Stored elements seen as compute values: the storage itself for float and double, a converted copy for Half
/// and BFloat16.
template <class S>
class ComputeView {
 public:
  /// Views (or converts) `count` elements starting at `source`.
  ComputeView(const S* source, std::int64_t count) : copy_(count) {
    if constexpr (kIsReducedPrecision<S>) {
      load_span(source, copy_.data(), count);
      values_ = copy_.data();
    } else {
      values_ = source;
    }
  }
  /// The compute values.
  const ComputeType<S>* data() const { return values_; }
  /// Compute value `index`.
  ComputeType<S> operator[](std::int64_t index) const { return values_[index]; }

 private:
  ConversionRoom<S> copy_;
  const ComputeType<S>* values_ = nullptr;
};

/// A writable compute-type view of stored elements. For Half and BFloat16 it is a copy that store() rounds back
/// once, so a result built from many additions (a sum over rows) is rounded only at the end. Without
/// `keep_contents` its values start undefined (for float and double they are the storage's): write before reading.
template <class S>
class ComputeTarget {
 public:
  /// A view of `count` elements at `destination`; with `keep_contents` the current values are loaded (for +=).
  ComputeTarget(S* destination, std::int64_t count, bool keep_contents)
      : destination_(destination), count_(count), copy_(count) {
    if constexpr (kIsReducedPrecision<S>) {
      values_ = copy_.data();
      if (keep_contents) load_span(destination, values_, count);
    } else {
      values_ = destination;
    }
  }
  /// The compute values to read and write.
  ComputeType<S>* data() const { return values_; }
  /// Compute value `index`, to read or write.
  ComputeType<S>& operator[](std::int64_t index) const { return values_[index]; }
  /// Rounds the compute values into storage (nothing to do when storage is the compute type).
  void store() const {
    if constexpr (kIsReducedPrecision<S>) store_span(values_, destination_, count_);
  }

 private:
  S* destination_;
  std::int64_t count_;
  ConversionRoom<S> copy_;
  ComputeType<S>* values_ = nullptr;
};

/// Calls body(row, slot) for every row in [0, rows), spread over the worker pool when the rows hold enough
/// elements (`row_length` each) to pay for waking it; `slot` is the thread's, for scratch the caller made per
/// thread. Rows must be independent of each other, as chunks are below.
template <class Body>
void parallel_rows(std::int64_t rows, std::int64_t row_length, const Body& body) {
  constexpr std::int64_t kSmallestParallel = 1 << 15;
  if (rows * row_length < kSmallestParallel) {
    for (std::int64_t row = 0; row < rows; ++row) body(row, 0);
    return;
  }
  parallel_for(rows, [&](std::int64_t row, int slot) { body(row, slot); });
}

/// Calls body(start, count) for consecutive chunks of at most kChunkSize elements covering [0, total), spread over
/// the worker pool when there are enough of them to pay for waking it. Chunks must be independent of each other
/// (elementwise work), so the result is the same whichever thread runs which chunk.
template <class Body>
void parallel_chunks(std::int64_t total, const Body& body) {
  constexpr std::int64_t kChunksPerTask = 16;          // 16K elements: far more work than handing it out costs
  constexpr std::int64_t kSmallestParallel = 1 << 15;  // below this one thread finishes before another wakes
  const std::int64_t chunks = (total + kChunkSize - 1) / kChunkSize;
  auto run_chunks = [&](std::int64_t first_chunk, std::int64_t end_chunk) {
    for (std::int64_t chunk = first_chunk; chunk < end_chunk; ++chunk) {
      const std::int64_t start = chunk * kChunkSize;
      body(start, std::min(kChunkSize, total - start));
    }
  };
  if (total < kSmallestParallel) return run_chunks(0, chunks);
  const std::int64_t tasks = (chunks + kChunksPerTask - 1) / kChunksPerTask;
  parallel_for(tasks, [&](std::int64_t task, int) {
    run_chunks(task * kChunksPerTask, std::min(chunks, (task + 1) * kChunksPerTask));
  });
}

/// Rounds a double to float "to odd": truncate, then set the last bit if anything was dropped. A second rounding
/// of that float to Half or BFloat16 then equals rounding the double directly (float keeps 2+ spare bits).
inline float round_to_odd_float(double value) {
  const float nearest = static_cast<float>(value);
  if (std::isnan(value) || static_cast<double>(nearest) == value) return nearest;
  const float truncated =
      std::fabs(static_cast<double>(nearest)) > std::fabs(value) ? std::nextafter(nearest, 0.0f) : nearest;
  std::uint32_t bits;
  std::memcpy(&bits, &truncated, sizeof bits);
  bits |= 1u;
  float odd;
  std::memcpy(&odd, &bits, sizeof odd);
  return odd;
}

/// Converts one element between storage types with a single correct rounding.
template <class Destination, class Source>
Destination convert_element(Source value) {
  if constexpr (std::is_same_v<Destination, Source>) {
    return value;
  } else if constexpr (std::is_same_v<Source, double> && kIsReducedPrecision<Destination>) {
    return store<Destination>(round_to_odd_float(value));
  } else {
    return store<Destination>(static_cast<ComputeType<Destination>>(load<Source>(value)));
  }
}

/// Converts `count` elements between storage types, each with a single correct rounding (convert_element's),
/// through the span conversions where one side is fp32 and the other fp16 or bf16.
template <class Destination, class Source>
void convert_span(const Source* source, Destination* destination, std::int64_t count) {
  if constexpr (std::is_same_v<Destination, Source>) {
    std::copy(source, source + count, destination);
  } else if constexpr (std::is_same_v<Destination, float> && kIsReducedPrecision<Source>) {
    widen_to_float(source, destination, count);
  } else if constexpr (std::is_same_v<Source, float> && kIsReducedPrecision<Destination>) {
    round_from_float(source, destination, count);
  } else {
    for (std::int64_t i = 0; i < count; ++i) destination[i] = convert_element<Destination>(source[i]);
  }
}

/// Calls `function` with a value of the C++ storage type that `dtype` names; `op` names the caller in errors.
template <class Function>
decltype(auto) visit_float_dtype(DType dtype, const char* op, Function&& function) {
  switch (dtype) {
    case DType::F32: return function(float{});
    case DType::F64: return function(double{});
    case DType::F16: return function(Half{});
    case DType::BF16: return function(BFloat16{});
    case DType::I32: break;
  }
  throw LadderError(make_message(op, ": dtype ", dtype_name(dtype),
                                 " is not a floating-point storage type (expected F32, F64, F16 or BF16)"));
}

}  // namespace ladder::ops::cpu
