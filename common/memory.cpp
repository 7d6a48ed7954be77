#include "common/memory.hpp"

#include <sys/mman.h>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iomanip>
#include <limits>
#include <mutex>
#include <sstream>

#include "common/cuda_runtime.hpp"
#include "common/error.hpp"

namespace ladder {

std::string category_name(MemoryCategory category) {
  switch (category) {
    case MemoryCategory::Parameters: return "parameters";
    case MemoryCategory::Gradients: return "gradients";
    case MemoryCategory::MasterWeights: return "master weights";
    case MemoryCategory::OptimizerState: return "optimizer state";
    case MemoryCategory::Activations: return "activations";
    case MemoryCategory::GatheredParameters: return "gathered weights";
    case MemoryCategory::GradientBuckets: return "gradient buckets";
    case MemoryCategory::CommBuffers: return "comm buffers";
    case MemoryCategory::Workspace: return "workspace";
  }
  return "unknown";
}

namespace {
int device_index(Device device) { return static_cast<int>(device); }
int category_index(MemoryCategory category) { return static_cast<int>(category); }

// Freed host blocks stay in the process for the next allocation. By default glibc maps every block of 32 MiB or
// more afresh and unmaps it on free (and gives smaller ones back when the heap's top grows large), so the next
// allocation of the same size takes a page fault and a page of zeroes from the kernel for every 4 KiB it touches.
// The 16-bit GEMMs take their fp32 scratch per call: at GPT-2's shape the LM head's backward asks for 86 MB, which
// came to 28,000 page faults in every step of stages 02-09, and 404 ms for that backward where it takes 326 ms
// with the memory kept (kernel/matmul_backward/f16/gpt2_lm_head, medians of 5). The accountant still counts what
// the buffers hold; the process's resident memory stays near the accountant's peak instead of following it down.
void keep_freed_host_memory_for_reuse() {
#if defined(__GLIBC__)
  static std::once_flag once;
  std::call_once(once, [] {
    mallopt(M_MMAP_MAX, 0);                                       // every block from the heap, none mapped alone
    mallopt(M_TRIM_THRESHOLD, std::numeric_limits<int>::max());  // and the heap's top not handed back
  });
#endif
}

// 64-byte alignment: a cache line, and what vectorised loads want. malloc'ed with 64 bytes to spare, the block
// starts at the first multiple of 64 inside: aligned_alloc (glibc's memalign) asks the heap for more than it
// hands out, so it never fits into the space of a block of the same size freed before, and the heap would grow
// by a whole block on every call that frees one and asks for it again.
constexpr std::size_t kHostAlignment = 64;

void* aligned_start(void* allocation) {
  const auto address = reinterpret_cast<std::uintptr_t>(allocation);
  return reinterpret_cast<void*>((address + kHostAlignment - 1) / kHostAlignment * kHostAlignment);
}
}  // namespace

std::string format_bytes(std::int64_t bytes) {
  std::ostringstream out;
  const double value = static_cast<double>(bytes);
  if (bytes < 1024) out << bytes << " B";
  else if (bytes < 1024 * 1024) out << std::fixed << std::setprecision(1) << value / 1024 << " KiB";
  else if (bytes < 1024LL * 1024 * 1024) out << std::fixed << std::setprecision(2) << value / (1024.0 * 1024) << " MiB";
  else out << std::fixed << std::setprecision(2) << value / (1024.0 * 1024 * 1024) << " GiB";
  return out.str();
}

void MemoryAccountant::on_allocate(Device device, MemoryCategory category, std::int64_t bytes) {
  CategoryUsage& slot = usage_[device_index(device)][category_index(category)];
  slot.current += bytes;
  slot.peak = std::max(slot.peak, slot.current);
  std::int64_t& total = current_total_[device_index(device)];
  total += bytes;
  peak_total_[device_index(device)] = std::max(peak_total_[device_index(device)], total);
}

void MemoryAccountant::on_free(Device device, MemoryCategory category, std::int64_t bytes) {
  usage_[device_index(device)][category_index(category)].current -= bytes;
  current_total_[device_index(device)] -= bytes;
}

CategoryUsage MemoryAccountant::usage(Device device, MemoryCategory category) const {
  return usage_[device_index(device)][category_index(category)];
}

std::int64_t MemoryAccountant::current_total(Device device) const { return current_total_[device_index(device)]; }

std::int64_t MemoryAccountant::peak_total(Device device) const { return peak_total_[device_index(device)]; }

void MemoryAccountant::reset_peaks() {
  for (int d = 0; d < kDeviceCount; ++d) {
    for (CategoryUsage& slot : usage_[d]) slot.peak = slot.current;
    peak_total_[d] = current_total_[d];
  }
}

std::string MemoryAccountant::format_table(Device device, std::int64_t parameter_count) const {
  std::ostringstream out;
  const bool per_parameter = parameter_count > 0;
  out << "memory (" << device_name(device) << ")\n";
  out << std::left << std::setw(18) << "category" << std::right << std::setw(13) << "current" << std::setw(13) << "peak";
  if (per_parameter) out << std::setw(13) << "bytes/param";
  out << "\n";
  auto row = [&](const std::string& name, std::int64_t current, std::int64_t peak) {
    out << std::left << std::setw(18) << name << std::right << std::setw(13) << format_bytes(current) << std::setw(13)
        << format_bytes(peak);
    if (per_parameter) {
      out << std::setw(13) << std::fixed << std::setprecision(3)
          << static_cast<double>(peak) / static_cast<double>(parameter_count);
    }
    out << "\n";
  };
  for (int c = 0; c < kMemoryCategoryCount; ++c) {
    const CategoryUsage& slot = usage_[device_index(device)][c];
    row(category_name(static_cast<MemoryCategory>(c)), slot.current, slot.peak);
  }
  row("total", current_total(device), peak_total(device));
  return out.str();
}

MemoryAccountant& memory_accountant() {
  static MemoryAccountant accountant;
  return accountant;
}

Buffer::Buffer(std::size_t bytes, MemoryCategory category, Device device, BufferContents contents)
    : bytes_(bytes), category_(category), device_(device) {
  if (bytes == 0) return;
  if (device == Device::CPU) {
    keep_freed_host_memory_for_reuse();
    host_allocation_ = std::malloc(bytes + kHostAlignment);
    LADDER_CHECK(host_allocation_ != nullptr, "out of host memory allocating ", bytes, " bytes for ",
                 category_name(category));
    data_ = aligned_start(host_allocation_);
    if (contents == BufferContents::Zeroed) std::memset(data_, 0, bytes);
  } else if (device == Device::Meta) {
    // Addresses that views can be cut from, but no memory behind them: reading one would fault at once.
    data_ = ::mmap(nullptr, bytes, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    LADDER_CHECK(data_ != MAP_FAILED, "cannot reserve ", bytes, " bytes of address space for a meta ",
                 category_name(category), " buffer: ", std::strerror(errno));
  } else {
    data_ = cuda_allocate_zeroed(bytes, category_name(category));
  }
  memory_accountant().on_allocate(device_, category_, static_cast<std::int64_t>(bytes_));
}

Buffer::~Buffer() { release(); }

Buffer::Buffer(Buffer&& other) noexcept
    : data_(other.data_),
      host_allocation_(other.host_allocation_),
      bytes_(other.bytes_),
      category_(other.category_),
      device_(other.device_) {
  other.data_ = nullptr;
  other.host_allocation_ = nullptr;
  other.bytes_ = 0;
}

Buffer& Buffer::operator=(Buffer&& other) noexcept {
  if (this != &other) {
    release();
    data_ = other.data_;
    host_allocation_ = other.host_allocation_;
    bytes_ = other.bytes_;
    category_ = other.category_;
    device_ = other.device_;
    other.data_ = nullptr;
    other.host_allocation_ = nullptr;
    other.bytes_ = 0;
  }
  return *this;
}

void Buffer::release() {
  if (data_ == nullptr) return;
  if (device_ == Device::CPU) std::free(host_allocation_);
  else if (device_ == Device::Meta) ::munmap(data_, bytes_);
  else cuda_free(data_);
  memory_accountant().on_free(device_, category_, static_cast<std::int64_t>(bytes_));
  data_ = nullptr;
  host_allocation_ = nullptr;
  bytes_ = 0;
}

const char* device_name(Device device) {
  switch (device) {
    case Device::CPU: return "cpu";
    case Device::CUDA: return "cuda";
    case Device::Meta: return "meta";
  }
  return "unknown";
}

bool cuda_device_available() { return cuda_device_count() > 0; }

}  // namespace ladder
