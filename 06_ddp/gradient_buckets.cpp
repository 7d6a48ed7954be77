#include "06_ddp/gradient_buckets.hpp"

#include <CLI/CLI.hpp>

#include <chrono>
#include <iomanip>
#include <sstream>
#include <thread>

#include "common/error.hpp"
#include "common/ops/ops.hpp"
#include "common/train/run_with_ranks.hpp"

namespace ladder::stage06 {

void DdpSettings::add_flags(CLI::App& app) {
  add_bucket_flag(app);
  add_reduction_flags(app);
}

void DdpSettings::add_bucket_flag(CLI::App& app) {
  auto* bucket = app.add_option_function<double>(
      "--bucket-mb",
      [this](double megabytes) {
        LADDER_CHECK(megabytes > 0, "--bucket-mb ", megabytes, " must be positive");
        bucket_bytes = std::max<std::int64_t>(1, static_cast<std::int64_t>(megabytes * 1024 * 1024));
      },
      "Gradient bucket size in MiB (a bucket never splits a unit; tiny values give one bucket per unit)");
  // The default shown is the stage's own (stage 08 starts from a smaller bucket than DDP's 25 MiB).
  std::ostringstream shown;
  shown << static_cast<double>(bucket_bytes) / (1024.0 * 1024.0);
  bucket->default_str(shown.str())->group("Data parallel");
}

void DdpSettings::add_reduction_flags(CLI::App& app) {
  add_communicator_flag(app);
  app.add_option_function<std::string>(
         "--reduce-dtype",
         [this](const std::string& name) {
           LADDER_CHECK(name == "fp32" || name == "bf16", "--reduce-dtype ", name, ": expected fp32 or bf16");
           reduce_dtype = name == "fp32" ? DType::F32 : DType::BF16;
         },
         "Type the gradient sum is computed in: fp32 (rounds once) or bf16 (half the bytes on the wire)")
      ->default_str("fp32")
      ->group("Data parallel");
  app.add_option("--debug-delay-ms", debug_delay_ms,
                 "Sleep before every collective and optimizer step (debugging; results must not change)")
      ->check(CLI::NonNegativeNumber)
      ->group("Data parallel");
}

std::vector<BucketSpan> plan_buckets(const ParameterLayout& layout, std::int64_t bucket_bytes,
                                     std::int64_t element_bytes) {
  const auto& units = layout.units();
  std::vector<BucketSpan> buckets;
  // Backward finishes the head first and the embeddings last, so buckets are filled in that order.
  for (int unit = static_cast<int>(units.size()) - 1; unit >= 0; --unit) {
    if (buckets.empty() || buckets.back().size * element_bytes >= bucket_bytes) buckets.emplace_back();
    BucketSpan& bucket = buckets.back();
    if (bucket.size == 0) bucket.last_unit = unit;
    bucket.first_unit = unit;
    bucket.offset = units[unit].offset;  // units are contiguous and visited downwards
    bucket.size += units[unit].size;
  }
  return buckets;
}

GradientBuckets::GradientBuckets(GPT& model, Communicator& communicator, const DdpSettings& settings)
    : model_(model), communicator_(communicator), settings_(settings), bucket_of_unit_(model.unit_count(), -1) {
  LADDER_CHECK(settings.reduce_dtype == DType::F32 || settings.reduce_dtype == model.dtype(),
               "gradients in ", dtype_name(model.dtype()), " can be reduced in F32 or in their own type, not in ",
               dtype_name(settings.reduce_dtype));
  communicator.set_debug_delay(std::chrono::milliseconds(settings.debug_delay_ms));
  const auto element_bytes = static_cast<std::int64_t>(dtype_size(settings.reduce_dtype));
  for (const BucketSpan& span : plan_buckets(model.layout(), settings.bucket_bytes, element_bytes)) {
    Bucket bucket;
    static_cast<BucketSpan&>(bucket) = span;
    buckets_.push_back(std::move(bucket));
    for (int unit = span.first_unit; unit <= span.last_unit; ++unit) bucket_of_unit_[unit] = bucket_count() - 1;
  }
  for (Bucket& bucket : buckets_) {
    bucket.units_pending = bucket.last_unit - bucket.first_unit + 1;
    if (settings.reduce_dtype != model.dtype()) {
      bucket.storage = Buffer(bucket.size * element_bytes, MemoryCategory::CommBuffers, model.device());
    }
  }
}

Tensor GradientBuckets::reduction_view(Bucket& bucket) const {
  if (bucket.storage.data() == nullptr) return model_.gradients().slice(bucket.offset, bucket.size);
  return view_of(bucket.storage, settings_.reduce_dtype);
}

void GradientBuckets::after_backward(int unit) {
  Bucket& bucket = buckets_[bucket_of_unit_[unit]];
  if (--bucket.units_pending > 0) return;
  Tensor gradients = model_.gradients().slice(bucket.offset, bucket.size);
  Tensor reduced = reduction_view(bucket);
  if (reduced.data() != gradients.data()) ops::convert(reduced, gradients);
  bucket.pending = communicator_.all_reduce_async(reduced, Reduction::Average);
}

void GradientBuckets::wait_all() {
  for (Bucket& bucket : buckets_) {
    LADDER_CHECK(bucket.pending != nullptr, "bucket of units ", bucket.first_unit, "..", bucket.last_unit,
                 " was never reduced: backward did not complete every unit");
    bucket.pending->wait();
    bucket.pending.reset();
    Tensor gradients = model_.gradients().slice(bucket.offset, bucket.size);
    Tensor reduced = reduction_view(bucket);
    if (reduced.data() != gradients.data()) ops::convert(gradients, reduced);  // the mean, rounded once
    bucket.units_pending = bucket.last_unit - bucket.first_unit + 1;
  }
  if (settings_.debug_delay_ms > 0) std::this_thread::sleep_for(std::chrono::milliseconds(settings_.debug_delay_ms));
}

std::string GradientBuckets::describe() const {
  std::ostringstream out;
  out << bucket_count() << (bucket_count() == 1 ? " bucket" : " buckets") << " of up to " << std::fixed
      << std::setprecision(1) << static_cast<double>(settings_.bucket_bytes) / (1024.0 * 1024.0) << " MiB, reduced in "
      << dtype_name(settings_.reduce_dtype) << " over " << communicator_.world_size() << " rank"
      << (communicator_.world_size() == 1 ? "" : "s") << " (" << communicator_.backend() << ")";
  return out.str();
}

double mean_over_ranks(Communicator& communicator, double value) {
  communicator.all_reduce(Tensor(&value, DType::F64, {1}), Reduction::Average);
  return value;
}

}  // namespace ladder::stage06
