// What the collective tests of every backend share: each rank's input as a known function of (rank, index), a
// typed host array to hold it, the tolerance of a reduced-precision reduction, and the checks themselves. With
// these the expected result of any collective is computed in double, without any communication, and each test
// file only says where its arrays live: comm_collectives_test.cpp in host memory (MPI), comm_nccl_test.cpp on the
// GPU (NCCL).
#pragma once

#include <gtest/gtest.h>

#include <cmath>
#include <concepts>
#include <cstdint>
#include <vector>

#include "common/comm/communicator.hpp"
#include "common/dtype.hpp"
#include "common/memory.hpp"
#include "common/tensor.hpp"

namespace ladder::collective_checks {

/// Rank `rank`'s input at `index`: small integers and halves, so fp16/bf16 hold every input exactly and only
/// the reductions round.
inline double value_of(int rank, std::int64_t index) {
  return static_cast<double>((rank * 7 + index * 3) % 23) / 2.0 - 5.0;
}

/// The floating-point types every collective is checked in.
inline const std::vector<DType> kFloatTypes = {DType::F32, DType::F64, DType::F16, DType::BF16};
/// Sizes that split evenly into no vector width.
inline const std::vector<std::int64_t> kOddSizes = {1, 7, 1001};

/// A typed host array filled from doubles, read back as doubles.
class Values {
 public:
  /// `count` zeros of `dtype`.
  Values(DType dtype, std::int64_t count)
      : dtype_(dtype), storage_(count * dtype_size(dtype), MemoryCategory::Workspace), count_(count) {}
  /// The whole array as a 1-D CPU tensor.
  Tensor tensor() const { return Tensor(storage_.data(), dtype_, {count_}); }
  /// Stores `value` at `i`, rounded to the element type.
  void set(std::int64_t i, double value) {
    switch (dtype_) {
      case DType::F32: static_cast<float*>(storage_.data())[i] = static_cast<float>(value); break;
      case DType::F64: static_cast<double*>(storage_.data())[i] = value; break;
      case DType::F16: static_cast<Half*>(storage_.data())[i] = Half(static_cast<float>(value)); break;
      case DType::BF16: static_cast<BFloat16*>(storage_.data())[i] = BFloat16(static_cast<float>(value)); break;
      case DType::I32: static_cast<std::int32_t*>(storage_.data())[i] = static_cast<std::int32_t>(value); break;
    }
  }
  /// The element at `i`, widened to double.
  double get(std::int64_t i) const {
    switch (dtype_) {
      case DType::F32: return static_cast<float*>(storage_.data())[i];
      case DType::F64: return static_cast<double*>(storage_.data())[i];
      case DType::F16: return static_cast<float>(static_cast<Half*>(storage_.data())[i]);
      case DType::BF16: return static_cast<float>(static_cast<BFloat16*>(storage_.data())[i]);
      case DType::I32: return static_cast<std::int32_t*>(storage_.data())[i];
    }
    return 0;
  }
  /// Nothing to copy: the collective reads this host array itself.
  void upload() {}
  /// Nothing to copy: the collective wrote into this host array itself.
  void download() {}

 private:
  DType dtype_;
  Buffer storage_;
  std::int64_t count_;
};

/// Allowed error of a sum of a few of these values: exact in every type but bf16 (8 bits: 2^-8 relative) and
/// fp16 beyond 2048.
inline double tolerance(DType dtype, double expected) {
  if (dtype == DType::BF16) return std::abs(expected) * std::ldexp(1.0, -8) * 2;
  if (dtype == DType::F16) return std::abs(expected) * std::ldexp(1.0, -11) * 2;
  return 0.0;
}

/// Sum over all ranks of value_of(r, index), in double.
inline double sum_over_ranks(int N, std::int64_t index) {
  double sum = 0;
  for (int r = 0; r < N; ++r) sum += value_of(r, index);
  return sum;
}

/// What the checks need of an array: made from (dtype, count), set() and get() on a host copy, tensor() for the
/// collective, upload() before it and download() after it (both nothing for Values, which lives on the host).
template <class Array>
concept CollectiveArray = requires(Array array, const Array& constant, std::int64_t i, double value) {
  Array(DType::F32, i);
  array.set(i, value);
  { constant.get(i) } -> std::convertible_to<double>;
  { constant.tensor() } -> std::same_as<Tensor>;
  array.upload();
  array.download();
};

// The checks, one per test. Each is the whole body of a test, so an ASSERT that returns from it ends the test.

/// All-reduce of every float type and odd size, summed and averaged: the sum over ranks, exact but for fp16/bf16
/// rounding (and the division, for the average).
template <CollectiveArray Array>
void check_all_reduce_sum_and_average(Communicator& world) {
  const int N = world.world_size(), rank = world.rank();
  for (DType dtype : kFloatTypes) {
    for (std::int64_t size : kOddSizes) {
      for (Reduction reduction : {Reduction::Sum, Reduction::Average}) {
        Array data(dtype, size);
        for (std::int64_t i = 0; i < size; ++i) data.set(i, value_of(rank, i));
        data.upload();
        world.all_reduce(data.tensor(), reduction);
        data.download();
        for (std::int64_t i = 0; i < size; ++i) {
          double expected = sum_over_ranks(N, i);
          if (reduction == Reduction::Average) expected /= N;
          ASSERT_NEAR(data.get(i), expected, tolerance(dtype, expected) + (reduction == Reduction::Average ? 1e-6 : 0))
              << dtype_name(dtype) << " size " << size << " element " << i;
        }
      }
    }
  }
}

/// All-reduce of int32: exact, Σ_r (100·r + i) = 100·N(N-1)/2 + N·i.
template <CollectiveArray Array>
void check_all_reduce_of_integers(Communicator& world) {
  Array data(DType::I32, 5);
  for (std::int64_t i = 0; i < 5; ++i) data.set(i, world.rank() * 100 + i);
  data.upload();
  world.all_reduce(data.tensor(), Reduction::Sum);
  data.download();
  const int N = world.world_size();
  for (std::int64_t i = 0; i < 5; ++i) EXPECT_EQ(data.get(i), 100.0 * N * (N - 1) / 2 + N * i);
}

/// Reduce-scatter of every float type and odd shard size: rank r gets elements [r·shard, (r+1)·shard) of the sum.
template <CollectiveArray Array>
void check_reduce_scatter(Communicator& world) {
  const int N = world.world_size(), rank = world.rank();
  for (DType dtype : kFloatTypes) {
    for (std::int64_t shard : kOddSizes) {
      Array input(dtype, shard * N), output(dtype, shard);
      for (std::int64_t i = 0; i < shard * N; ++i) input.set(i, value_of(rank, i));
      input.upload();
      world.reduce_scatter(output.tensor(), input.tensor(), Reduction::Sum);
      output.download();
      for (std::int64_t i = 0; i < shard; ++i) {
        const double expected = sum_over_ranks(N, rank * shard + i);
        ASSERT_NEAR(output.get(i), expected, tolerance(dtype, expected)) << dtype_name(dtype) << " shard " << shard;
      }
    }
  }
}

/// All-gather of every float type and odd shard size: rank r's shard lands at r·shard, bit for bit.
template <CollectiveArray Array>
void check_all_gather(Communicator& world) {
  const int N = world.world_size(), rank = world.rank();
  for (DType dtype : kFloatTypes) {
    for (std::int64_t shard : kOddSizes) {
      Array input(dtype, shard), output(dtype, shard * N);
      for (std::int64_t i = 0; i < shard; ++i) input.set(i, value_of(rank, i));
      input.upload();
      world.all_gather(output.tensor(), input.tensor());
      output.download();
      for (int r = 0; r < N; ++r) {
        for (std::int64_t i = 0; i < shard; ++i) {
          ASSERT_EQ(output.get(r * shard + i), value_of(r, i)) << dtype_name(dtype);
        }
      }
    }
  }
}

/// Broadcast from the first and from the last rank: every rank ends with the root's values.
template <CollectiveArray Array>
void check_broadcast(Communicator& world) {
  const int N = world.world_size();
  for (int root : {0, N - 1}) {
    Array data(DType::F32, 7);
    for (std::int64_t i = 0; i < 7; ++i) data.set(i, value_of(world.rank(), i));
    data.upload();
    world.broadcast(data.tensor(), root);
    data.download();
    for (std::int64_t i = 0; i < 7; ++i) EXPECT_EQ(data.get(i), value_of(root, i)) << "root " << root;
  }
}

/// Two asynchronous all-reduces in flight at once, waited for in the opposite order: both finish correctly.
template <CollectiveArray Array>
void check_asynchronous_collectives_in_flight_together(Communicator& world) {
  const int N = world.world_size(), rank = world.rank();
  Array first(DType::F32, 1001), second(DType::BF16, 7);
  for (std::int64_t i = 0; i < 1001; ++i) first.set(i, value_of(rank, i));
  for (std::int64_t i = 0; i < 7; ++i) second.set(i, value_of(rank, i + 5));
  first.upload();
  second.upload();
  auto pending_first = world.all_reduce_async(first.tensor(), Reduction::Sum);
  auto pending_second = world.all_reduce_async(second.tensor(), Reduction::Sum);
  pending_second->wait();  // out of order on purpose
  pending_first->wait();
  first.download();
  second.download();
  for (std::int64_t i = 0; i < 1001; ++i) ASSERT_EQ(first.get(i), sum_over_ranks(N, i));
  for (std::int64_t i = 0; i < 7; ++i) {
    const double expected = sum_over_ranks(N, i + 5);
    ASSERT_NEAR(second.get(i), expected, tolerance(DType::BF16, expected));
  }
}

/// The byte counts: logical bytes are the tensor's, ring bytes an all-reduce's 2(N-1)/N of them.
template <CollectiveArray Array>
void check_stats_count_logical_and_ring_bytes(Communicator& world) {
  const int N = world.world_size();
  world.stats().reset();
  Array gradients(DType::F32, 1000), shard(DType::F32, 10), gathered(DType::F32, 10 * N);
  world.all_reduce(gradients.tensor(), Reduction::Average);
  world.all_gather(gathered.tensor(), shard.tensor());
  const CommStats& stats = world.stats();
  EXPECT_EQ(stats.logical_bytes[static_cast<int>(Collective::AllReduce)], 4000);
  EXPECT_EQ(stats.logical_bytes[static_cast<int>(Collective::AllGather)], 40 * N);
  EXPECT_EQ(stats.calls[static_cast<int>(Collective::AllReduce)], 1);
  EXPECT_DOUBLE_EQ(stats.ring_bytes[static_cast<int>(Collective::AllReduce)], 2.0 * (N - 1) / N * 4000);
  EXPECT_EQ(stats.total_logical_bytes(), 4000 + 40 * N);
}
}  // namespace ladder::collective_checks
