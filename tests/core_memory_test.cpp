// The memory accountant: exact current and peak bytes per category as Buffers come and go; and host memory that a
// freed Buffer leaves behind, handed out again without page faults.
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <unistd.h>

#include <cstdint>
#include <cstring>
#include <utility>

#include "common/memory.hpp"

namespace ladder {
namespace {

// The accountant is process-wide, so each test measures changes from the state it starts in.
std::int64_t current(MemoryCategory category) { return memory_accountant().usage(Device::CPU, category).current; }
std::int64_t peak(MemoryCategory category) { return memory_accountant().usage(Device::CPU, category).peak; }
std::int64_t current_total() { return memory_accountant().current_total(Device::CPU); }
std::int64_t peak_total() { return memory_accountant().peak_total(Device::CPU); }

TEST(MemoryAccountant, AllocationAndReleaseMoveCurrentAndPeakByExactlyTheBytes) {
  memory_accountant().reset_peaks();
  const std::int64_t start = current(MemoryCategory::Parameters);
  const std::int64_t start_total = current_total();
  {
    Buffer buffer(1000, MemoryCategory::Parameters);
    EXPECT_EQ(current(MemoryCategory::Parameters), start + 1000);
    EXPECT_EQ(peak(MemoryCategory::Parameters), start + 1000);
    EXPECT_EQ(current_total(), start_total + 1000);
    EXPECT_EQ(buffer.bytes(), 1000u);
    EXPECT_EQ(buffer.category(), MemoryCategory::Parameters);
    const auto* bytes = static_cast<const unsigned char*>(buffer.data());
    for (int i = 0; i < 1000; ++i) ASSERT_EQ(bytes[i], 0) << "byte " << i << " is not zero-initialised";
  }
  EXPECT_EQ(current(MemoryCategory::Parameters), start);
  EXPECT_EQ(peak(MemoryCategory::Parameters), start + 1000);  // the peak remembers
  EXPECT_EQ(current_total(), start_total);
}

TEST(MemoryAccountant, ReleaseAndMovesAccountEachByteOnce) {
  const std::int64_t start = current(MemoryCategory::Gradients);
  Buffer first(256, MemoryCategory::Gradients);
  Buffer moved(std::move(first));  // ownership moves; no bytes are added
  EXPECT_EQ(current(MemoryCategory::Gradients), start + 256);
  EXPECT_EQ(first.data(), nullptr);
  EXPECT_EQ(first.bytes(), 0u);

  Buffer target(64, MemoryCategory::Gradients);
  EXPECT_EQ(current(MemoryCategory::Gradients), start + 320);
  target = std::move(moved);  // target's 64 bytes are freed, the 256 change hands
  EXPECT_EQ(current(MemoryCategory::Gradients), start + 256);
  EXPECT_EQ(target.bytes(), 256u);

  target.release();
  EXPECT_EQ(current(MemoryCategory::Gradients), start);
  target.release();  // a second release frees nothing twice
  EXPECT_EQ(current(MemoryCategory::Gradients), start);

  Buffer empty(0, MemoryCategory::Gradients);
  EXPECT_EQ(empty.data(), nullptr);
  EXPECT_EQ(current(MemoryCategory::Gradients), start);
}

TEST(MemoryAccountant, PeakTotalIsTheSimultaneousPeakNotTheSumOfCategoryPeaks) {
  memory_accountant().reset_peaks();
  const std::int64_t start_total = current_total();
  { Buffer activations(3000, MemoryCategory::Activations); }
  { Buffer workspace(2000, MemoryCategory::Workspace); }
  // Each category peaked on its own, never together.
  EXPECT_EQ(peak(MemoryCategory::Activations), current(MemoryCategory::Activations) + 3000);
  EXPECT_EQ(peak(MemoryCategory::Workspace), current(MemoryCategory::Workspace) + 2000);
  EXPECT_EQ(peak_total(), start_total + 3000);
  {
    Buffer a(3000, MemoryCategory::Activations);
    Buffer b(2000, MemoryCategory::Workspace);
    EXPECT_EQ(peak_total(), start_total + 5000);
  }
  EXPECT_EQ(current_total(), start_total);
}

TEST(MemoryAccountant, ResetPeaksBringsEveryPeakDownToCurrent) {
  Buffer held(128, MemoryCategory::OptimizerState);
  { Buffer transient(4096, MemoryCategory::OptimizerState); }
  EXPECT_GE(peak(MemoryCategory::OptimizerState), current(MemoryCategory::OptimizerState) + 4096);
  memory_accountant().reset_peaks();
  for (int c = 0; c < kMemoryCategoryCount; ++c) {
    const auto category = static_cast<MemoryCategory>(c);
    EXPECT_EQ(peak(category), current(category)) << category_name(category);
  }
  EXPECT_EQ(peak_total(), current_total());
}

TEST(MemoryAccountant, TableNamesEveryCategoryAndTheTotal) {
  Buffer parameters(4000, MemoryCategory::Parameters);
  const std::string table = memory_accountant().format_table(Device::CPU, 1000);
  for (int c = 0; c < kMemoryCategoryCount; ++c) {
    const std::string name = category_name(static_cast<MemoryCategory>(c));
    EXPECT_NE(table.find(name), std::string::npos) << "missing category " << name << " in\n" << table;
  }
  EXPECT_NE(table.find("total"), std::string::npos) << table;
  EXPECT_NE(table.find("bytes/param"), std::string::npos) << table;
  EXPECT_EQ(memory_accountant().format_table(Device::CPU).find("bytes/param"), std::string::npos);
}

TEST(MemoryAccountant, CategoryNamesAreDistinct) {
  for (int a = 0; a < kMemoryCategoryCount; ++a) {
    for (int b = a + 1; b < kMemoryCategoryCount; ++b) {
      EXPECT_NE(category_name(static_cast<MemoryCategory>(a)), category_name(static_cast<MemoryCategory>(b)));
    }
  }
}

// Page faults this process has taken so far that read nothing from disk: a page mapped in, zeroed by the kernel.
std::int64_t minor_page_faults() {
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  return usage.ru_minflt;
}

TEST(HostMemory, ABlockFreedAndAskedForAgainComesBackWithoutPageFaultsAndStillZeroed) {
#if !defined(__GLIBC__)
  GTEST_SKIP() << "the allocator settings behind this are glibc's (mallopt)";
#endif
  // 64 MiB: beyond the 32 MiB from which glibc, left to itself, maps each block afresh and unmaps it on free, so
  // that every 4 KiB of the next block of that size is a page fault (16,384 of them here).
  constexpr std::size_t kBytes = std::size_t{64} << 20;
  const std::int64_t pages = static_cast<std::int64_t>(kBytes) / sysconf(_SC_PAGESIZE);
  {
    Buffer first(kBytes, MemoryCategory::Workspace, Device::CPU, BufferContents::Uninitialized);
    std::memset(first.data(), 0xAB, kBytes);  // every page touched, and left dirty
  }
  const std::int64_t faults_before = minor_page_faults();
  {
    Buffer second(kBytes, MemoryCategory::Workspace);  // zeroed: every page written again
    const auto* bytes = static_cast<const unsigned char*>(second.data());
    for (std::size_t i = 0; i < kBytes; i += 4096) {
      ASSERT_EQ(bytes[i], 0) << "byte " << i << " kept the old block's value";
    }
  }
  const std::int64_t faults = minor_page_faults() - faults_before;
  // Kept, the block takes no faults of its own; handed back, one per page. The bound sits far from both: this
  // test once failed under a parallel ctest with the bound at a hundredth of the pages and passed when rerun
  // (500 runs alone and beside a GPT-2 run did not fail again), so faults from outside the allocator, the
  // kernel moving pages perhaps, must not decide it.
  EXPECT_LT(faults, pages / 10) << faults << " page faults for a block of " << pages
                                << " pages the process had just freed: it was handed back to the kernel";
}

}  // namespace
}  // namespace ladder
