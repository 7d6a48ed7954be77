/// @file memory.hpp
/// @brief The memory accountant: every allocation names a category; current and peak bytes per category.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>

namespace ladder {

/// Where an allocation lives. Meta is a plan: its buffers are accounted but hold no memory (an address range that
/// is reserved and never touched), and ops on it do no arithmetic, so one process can show what any model would
/// hold (--device meta).
enum class Device { CPU, CUDA, Meta };

/// Number of devices the accountant keeps apart.
inline constexpr int kDeviceCount = 3;

/// "cpu", "cuda" or "meta", as the --device flag spells it.
const char* device_name(Device device);

/// What an allocation is for; the categories of the memory table.
enum class MemoryCategory {
  Parameters,      ///< working weights the forward pass reads
  Gradients,       ///< gradients of the working weights
  MasterWeights,   ///< fp32 copy of reduced-precision weights
  OptimizerState,  ///< Adam first and second moments
  Activations,     ///< forward values kept for backward, and their gradients
  GatheredParameters,  ///< whole units' weights gathered from their shards for a while (FSDP)
  GradientBuckets,     ///< whole units' gradients while backward fills them, before they are sharded (ZeRO-2, FSDP)
  CommBuffers,     ///< buckets and staging buffers of collectives
  Workspace,       ///< scratch space of ops
};

/// Number of memory categories.
inline constexpr int kMemoryCategoryCount = 9;

/// "512 B", "12.5 KiB", "3.07 MiB", "1.20 GiB": bytes as the memory table shows them.
std::string format_bytes(std::int64_t bytes);

/// Display name of a category ("parameters", "optimizer state", ...).
std::string category_name(MemoryCategory category);

/// Current and peak bytes of one category on one device.
struct CategoryUsage {
  std::int64_t current = 0;  ///< bytes allocated now
  std::int64_t peak = 0;     ///< highest `current` seen since the last reset
};

/// Counts bytes per (device, category); one per process, reached through memory_accountant().
class MemoryAccountant {
 public:
  /// Records an allocation of `bytes` in `category` on `device`.
  void on_allocate(Device device, MemoryCategory category, std::int64_t bytes);
  /// Records the release of an earlier allocation.
  void on_free(Device device, MemoryCategory category, std::int64_t bytes);
  /// Usage of one category on one device.
  CategoryUsage usage(Device device, MemoryCategory category) const;
  /// Sum of current bytes over all categories on a device.
  std::int64_t current_total(Device device) const;
  /// Highest simultaneous total seen on a device (not the sum of per-category peaks).
  std::int64_t peak_total(Device device) const;
  /// Sets every peak to the current value (e.g. after set-up, to measure one step).
  void reset_peaks();
  /// The memory table for a device; with a parameter count, adds a bytes-per-parameter column.
  std::string format_table(Device device, std::int64_t parameter_count = 0) const;

 private:
  std::array<std::array<CategoryUsage, kMemoryCategoryCount>, kDeviceCount> usage_{};
  std::array<std::int64_t, kDeviceCount> current_total_{};
  std::array<std::int64_t, kDeviceCount> peak_total_{};
};

/// The process-wide accountant.
MemoryAccountant& memory_accountant();

/// What a new CPU buffer holds.
enum class BufferContents {
  Zeroed,        ///< every byte 0 (the default)
  Uninitialized  ///< whatever the allocator returns: for scratch its user fills completely before reading
};

/// An owned, accounted, zero-initialised (unless asked otherwise) block of memory on one device; move-only.
/// CPU blocks come from the C heap, which (from the first one on) keeps the memory of freed blocks for the next
/// allocation instead of handing it back to the kernel: the accountant counts the bytes buffers hold, while the
/// process's resident memory stays near the accountant's peak.
class Buffer {
 public:
  Buffer() = default;
  /// Allocates `bytes` on `device`, tagged with `category`, filled with zeros (on meta: reserved, never touched);
  /// on the CPU, `contents` may ask to skip the zeros, for scratch that is written before it is read.
  Buffer(std::size_t bytes, MemoryCategory category, Device device = Device::CPU,
         BufferContents contents = BufferContents::Zeroed);
  ~Buffer();
  /// Takes over another buffer's block (and its accounting); `other` becomes empty.
  Buffer(Buffer&& other) noexcept;
  /// Frees this block, then takes over `other`'s.
  Buffer& operator=(Buffer&& other) noexcept;
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;

  /// Start of the block (nullptr when empty).
  void* data() const { return data_; }
  /// Size in bytes.
  std::size_t bytes() const { return bytes_; }
  /// Device the block lives on.
  Device device() const { return device_; }
  /// Category the block is accounted under.
  MemoryCategory category() const { return category_; }
  /// Frees the block now (the accountant sees the bytes go).
  void release();

 private:
  void* data_ = nullptr;
  void* host_allocation_ = nullptr;  // on the CPU, what malloc returned (data_ is the aligned start inside it)
  std::size_t bytes_ = 0;
  MemoryCategory category_ = MemoryCategory::Workspace;
  Device device_ = Device::CPU;
};

/// True when this build has CUDA and a GPU is visible.
bool cuda_device_available();

}  // namespace ladder
