/// @file gradient_buckets.hpp
/// @brief Stage 06's technique: gradients averaged over replicas in buckets, each launched as soon as backward
/// has finished the units it holds, so communication overlaps the rest of backward.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "common/comm/communicator.hpp"
#include "common/memory.hpp"
#include "common/model/gpt.hpp"
#include "common/model/unit_hooks.hpp"

namespace CLI {
class App;
}

/// Stage 06: distributed data parallel.
namespace ladder::stage06 {

/// How the replicas reduce their gradients.
struct DdpSettings {
  /// Target bucket size in bytes (of the reduction dtype); PyTorch's DDP default is 25 MiB.
  std::int64_t bucket_bytes = 25 * 1024 * 1024;
  /// Type the sum is computed in. fp32 by default: bf16 would round every partial sum to 8 significant bits,
  /// an error that grows with the number of ranks; fp32 rounds once, when the mean goes back into bf16.
  DType reduce_dtype = DType::F32;
  /// Debugging: milliseconds to sleep before each collective and before the optimizer step (must not change results).
  int debug_delay_ms = 0;
  /// Adds --bucket-mb, --reduce-dtype and --debug-delay-ms to a stage's command line, showing the current values
  /// as the defaults.
  void add_flags(CLI::App& app);
  /// Adds --bucket-mb alone.
  void add_bucket_flag(CLI::App& app);
  /// Adds --reduce-dtype, --debug-delay-ms and --comm (FSDP reduces unit by unit, so it has no bucket size).
  void add_reduction_flags(CLI::App& app);
};

/// A run of whole, consecutive units whose gradients travel together in one collective.
struct BucketSpan {
  int first_unit = 0;        ///< lowest unit index in the bucket
  int last_unit = 0;         ///< highest (backward reaches it first)
  std::int64_t offset = 0;   ///< first element of the bucket in the flat layout
  std::int64_t size = 0;     ///< elements, padding included
};

/// Groups units into buckets in backward order (head first): a new bucket starts once the current one holds
/// `bucket_bytes` of `element_bytes`-sized elements. A bucket never splits a unit, so a tiny size gives one bucket
/// per unit and a huge one a single bucket. Returned in the order backward completes them.
std::vector<BucketSpan> plan_buckets(const ParameterLayout& layout, std::int64_t bucket_bytes,
                                     std::int64_t element_bytes);

/// Groups the model's units into buckets (in backward order: head first) and, hung on the model's
/// after_backward hook, starts an asynchronous all-reduce (mean over ranks) of a bucket once all its units'
/// gradients are complete. wait_all() then waits for every bucket and leaves the averaged gradients in the model.
/// A bucket never splits a unit, so a bucket size of one element gives one bucket per unit, and a huge one
/// gives a single bucket for the whole model.
class GradientBuckets : public UnitHooks {
 public:
  /// Plans the buckets for `model`; allocates fp32 bucket buffers (comm buffers) when the reduction dtype
  /// differs from the gradients', otherwise reduces the gradients in place.
  GradientBuckets(GPT& model, Communicator& communicator, const DdpSettings& settings);
  /// Counts unit `unit` as done; launches its bucket's all-reduce when the bucket is complete.
  void after_backward(int unit) override;
  /// Waits for every bucket and writes the averaged gradients back (call after backward, before the update).
  void wait_all();
  /// Number of buckets.
  int bucket_count() const { return static_cast<int>(buckets_.size()); }
  /// One line for the log: "3 buckets of up to 25.0 MiB, reduced in F32".
  std::string describe() const;

 private:
  struct Bucket : BucketSpan {
    int units_pending = 0;       // units whose gradients are not complete yet this step
    Buffer storage;              // fp32 copy, when reducing in another dtype than the gradients'
    std::unique_ptr<PendingCollective> pending;
  };
  Tensor reduction_view(Bucket& bucket) const;

  GPT& model_;
  Communicator& communicator_;
  DdpSettings settings_;
  std::vector<Bucket> buckets_;
  std::vector<int> bucket_of_unit_;
};

/// The mean of one number over all ranks (the logged loss is the global batch's, as with one big batch).
/// Not counted in the step's communication bytes, which are read before it.
double mean_over_ranks(Communicator& communicator, double value);

}  // namespace ladder::stage06
