#include "common/model/generate.hpp"

#include <algorithm>
#include <map>

#include "common/error.hpp"

namespace ladder {

namespace {

std::int32_t argmax(const std::vector<float>& values) {
  // First maximum wins, so ties decode the same way everywhere.
  return static_cast<std::int32_t>(std::max_element(values.begin(), values.end()) - values.begin());
}

}  // namespace

std::vector<std::vector<std::int32_t>> greedy_decode(GPT& model, const std::vector<std::vector<std::int32_t>>& prompts,
                                                     int max_new_tokens, std::int32_t stop_token) {
  std::vector<std::vector<std::int32_t>> outputs(prompts.size());
  std::map<std::size_t, std::vector<std::size_t>> by_length;
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    LADDER_CHECK(!prompts[i].empty(), "cannot continue an empty prompt (prompt ", i, ")");
    by_length[prompts[i].size()].push_back(i);
  }
  const int window = model.max_sequence_length();
  const int max_rows = model.max_batch_size();
  for (const auto& [length, members] : by_length) {
    for (std::size_t first = 0; first < members.size(); first += static_cast<std::size_t>(max_rows)) {
      const std::size_t rows = std::min(members.size() - first, static_cast<std::size_t>(max_rows));
      std::vector<std::vector<std::int32_t>> contexts;
      for (std::size_t r = 0; r < rows; ++r) contexts.push_back(prompts[members[first + r]]);
      std::vector<bool> done(rows, false);
      for (int step = 0; step < max_new_tokens; ++step) {
        // All rows share one length, so they run as one B×T forward.
        const std::size_t context_length = std::min(contexts[0].size(), static_cast<std::size_t>(window));
        std::vector<std::int32_t> tokens;
        for (const auto& context : contexts) tokens.insert(tokens.end(), context.end() - context_length, context.end());
        model.forward_logits(tokens, static_cast<int>(rows), static_cast<int>(context_length));
        bool all_done = true;
        for (std::size_t r = 0; r < rows; ++r) {
          const std::int32_t next = argmax(model.logits_at(static_cast<int>(r), static_cast<int>(context_length) - 1));
          contexts[r].push_back(next);
          if (!done[r]) {
            outputs[members[first + r]].push_back(next);
            done[r] = next == stop_token;
          }
          all_done = all_done && done[r];
        }
        if (all_done) break;
      }
    }
  }
  return outputs;
}

}  // namespace ladder
