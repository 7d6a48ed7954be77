#include "common/train/rank_agreement.hpp"

#include <algorithm>
#include <cstring>
#include <exception>
#include <string>

#include "common/error.hpp"

namespace ladder {
namespace {

// A rank's report: one int for "failed", then its message, truncated to what fits (a message is a sentence or two).
constexpr std::size_t kMessageBytes = 1020;
constexpr std::size_t kReportInts = 1 + kMessageBytes / sizeof(std::int32_t);

std::string message_of(const std::exception_ptr& failure) {
  try {
    std::rethrow_exception(failure);
  } catch (const std::exception& error) {
    return error.what();
  } catch (...) {
    return "an exception of unknown type";
  }
}

}  // namespace

void on_every_rank(Communicator& communicator, const std::function<void()>& action) {
  if (communicator.world_size() == 1) {
    action();
    return;
  }
  std::exception_ptr failure;
  try {
    action();
  } catch (...) {
    failure = std::current_exception();
  }
  std::vector<std::int32_t> report(kReportInts, 0);
  if (failure) {
    report[0] = 1;
    const std::string message = message_of(failure);
    std::memcpy(report.data() + 1, message.data(), std::min(message.size(), kMessageBytes));
  }
  const int world = communicator.world_size();
  std::vector<std::int32_t> reports(kReportInts * static_cast<std::size_t>(world), 0);
  communicator.all_gather(Tensor(reports.data(), DType::I32, {static_cast<std::int64_t>(reports.size())}),
                          Tensor(report.data(), DType::I32, {static_cast<std::int64_t>(report.size())}));
  if (failure) std::rethrow_exception(failure);
  for (int rank = 0; rank < world; ++rank) {
    const std::int32_t* from = reports.data() + kReportInts * static_cast<std::size_t>(rank);
    if (from[0] == 0) continue;
    const auto* text = reinterpret_cast<const char*>(from + 1);
    const std::string message(text, strnlen(text, kMessageBytes));
    throw LadderError(make_message(message, " (found by rank ", rank, " of ", world, ")"));
  }
}

std::vector<std::vector<std::uint64_t>> gather_from_every_rank(Communicator& communicator,
                                                               const std::vector<std::uint64_t>& values) {
  // The collectives move 32-bit integers; a 64-bit value travels as two of them, bits unchanged.
  const std::size_t count = values.size();
  const auto world = static_cast<std::size_t>(communicator.world_size());
  std::vector<std::int32_t> mine(2 * count);
  std::memcpy(mine.data(), values.data(), count * sizeof(std::uint64_t));
  std::vector<std::int32_t> everyone(2 * count * world);
  if (count > 0) {
    communicator.all_gather(Tensor(everyone.data(), DType::I32, {static_cast<std::int64_t>(everyone.size())}),
                            Tensor(mine.data(), DType::I32, {static_cast<std::int64_t>(mine.size())}));
  }
  std::vector<std::vector<std::uint64_t>> result(world, std::vector<std::uint64_t>(count));
  for (std::size_t rank = 0; rank < world; ++rank) {
    std::memcpy(result[rank].data(), everyone.data() + 2 * count * rank, count * sizeof(std::uint64_t));
  }
  return result;
}

}  // namespace ladder
