#include <memory>
#include <string>

#include "common/data/arithmetic_task.hpp"
#include "common/data/data_slice.hpp"
#include "common/data/data_source.hpp"
#include "common/data/random_tokens.hpp"
#include "common/data/text_file.hpp"
#include "common/data/token_shard.hpp"
#include "common/error.hpp"

namespace ladder {
namespace {

// The part of `spec` after `prefix` when spec starts with it and has a non-empty path; else empty.
std::string path_after(const std::string& spec, const std::string& prefix) {
  return spec.starts_with(prefix) ? spec.substr(prefix.size()) : std::string();
}

}  // namespace

int preferred_sequence_length(const std::string& spec) {
  return spec == "addition" || spec == "subtraction" ? ArithmeticTask::kProblemLength : 0;
}

std::unique_ptr<DataSource> make_data_source(const std::string& spec, const DataSlice& slice, std::uint64_t seed) {
  check_data_slice(slice);
  if (spec == "addition") return std::make_unique<ArithmeticTask>(ArithmeticOperation::Addition, slice, seed);
  if (spec == "subtraction") return std::make_unique<ArithmeticTask>(ArithmeticOperation::Subtraction, slice, seed);
  // Text and token shards are read in file order, so they ignore the seed: runs with different seeds see
  // the same data and differ only in their initial weights.
  if (const std::string path = path_after(spec, "text:"); !path.empty()) {
    return std::make_unique<TextFileSource>(path, slice);
  }
  if (const std::string path = path_after(spec, "tokens:"); !path.empty()) {
    return std::make_unique<TokenShardSource>(path, slice);
  }
  if (spec.starts_with("random:")) {
    return std::make_unique<RandomTokenSource>(random_vocab_size(spec.substr(7)), slice, seed);
  }
  throw LadderError(make_message("unknown data source '", spec,
                                 "'; expected one of: addition, subtraction, text:PATH (a UTF-8 file read as "
                                 "bytes), tokens:PATH (an llm.c GPT-2 .bin shard), random:V (random token ids)"));
}

}  // namespace ladder
