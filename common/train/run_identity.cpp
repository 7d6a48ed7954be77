#include "common/train/run_identity.hpp"

#include <cstdlib>
#include <set>
#include <vector>

#include "common/error.hpp"
#include "common/train/model_checkpoint.hpp"

namespace ladder {
namespace {

// Flags that watch, store or place a run without changing a bit of what it trains. Any flag not listed here (a
// stage's own included, e.g. stage 04's --loss-scale) must match: a new flag is safe by default.
const std::set<std::string> kFlagsFreeToDiffer = {
    "--metrics",        "--log-every",    "--eval-every", "--eval-batches",  "--eval-problems",
    "--samples",        "--sample-tokens", "--prompt",    "--save",          "--load",
    "--threads",        "--device",        "--tf32",      "--checkpoint-dir", "--checkpoint-every",
    "--keep",           "--stop-at-step",  "--resume",    "--debug-pause-checkpoint",
    "--debug-delay-ms", "--timeline",      "--timeline-step", "--save-merged"};  // --save-merged: stage 10's output

/// Equal as text, or both numbers of the same value ("1e-3" and "0.001").
bool same_value(const std::string& a, const std::string& b) {
  if (a == b) return true;
  char* a_end = nullptr;
  char* b_end = nullptr;
  const double a_value = std::strtod(a.c_str(), &a_end);
  const double b_value = std::strtod(b.c_str(), &b_end);
  return !a.empty() && !b.empty() && *a_end == '\0' && *b_end == '\0' && a_value == b_value;
}

/// "x in the checkpoint, y now" lines for every key whose values differ (a key missing on one side shows "none").
void add_differences(const std::map<std::string, std::string>& checkpoint, const std::map<std::string, std::string>& now,
                     const std::string& prefix, std::vector<std::string>& differences) {
  std::set<std::string> keys;
  for (const auto& [key, value] : checkpoint) keys.insert(key);
  for (const auto& [key, value] : now) keys.insert(key);
  for (const std::string& key : keys) {
    const auto before = checkpoint.find(key);
    const auto after = now.find(key);
    const std::string was = before == checkpoint.end() ? "none" : before->second;
    const std::string is = after == now.end() ? "none" : after->second;
    if (before != checkpoint.end() && after != now.end() && same_value(was, is)) continue;
    differences.push_back(prefix + key + ": " + was + " in the checkpoint, " + is + " now");
  }
}

}  // namespace

RunIdentity run_identity(const TrainOptions& options, const GPTConfig& config, int world_size) {
  RunIdentity identity;
  identity.stage = options.stage;
  identity.world_size = world_size;
  identity.model = config_metadata(config);
  for (const auto& [flag, value] : options.flag_values) {
    if (kFlagsFreeToDiffer.count(flag) == 0) identity.flags[flag] = value;
  }
  return identity;
}

void require_same_run(const RunIdentity& checkpoint, const RunIdentity& now, const std::string& where) {
  LADDER_CHECK(checkpoint.stage == now.stage, "--resume: ", where, " was written by stage ", checkpoint.stage,
               ", not ", now.stage, ": a checkpoint resumes only in the stage that wrote it (to start another stage "
               "from a run's weights, --save them at its end and --load them)");
  LADDER_CHECK(checkpoint.world_size == now.world_size, "--resume: ", where, " was written by ", checkpoint.world_size,
               checkpoint.world_size == 1 ? " rank" : " ranks", ", and this run has ", now.world_size,
               ": resume with the same number of ranks (mpiexec -n ", checkpoint.world_size,
               "); to change it, --save the weights at the end of a run and --load them");
  std::vector<std::string> differences;
  add_differences(checkpoint.model, now.model, "model ", differences);
  add_differences(checkpoint.flags, now.flags, "", differences);
  if (differences.empty()) return;
  std::string list;
  for (const std::string& difference : differences) list += (list.empty() ? "" : "; ") + difference;
  throw LadderError(make_message("--resume: ", where, " belongs to another run (", list,
                                 "). Resume with the flags it was written with"));
}

}  // namespace ladder
