#include "common/model/activations.hpp"

#include <cstdint>

namespace ladder {

namespace {

DType compute_dtype(DType storage) { return storage == DType::F64 ? DType::F64 : DType::F32; }

// Hands out consecutive 64-byte-aligned views of one block. With a null base it only counts bytes,
// which is how the block's size is found before it is allocated.
class Carver {
 public:
  Carver(void* base, Device device) : base_(static_cast<char*>(base)), device_(device) {}
  Tensor take(DType dtype, std::initializer_list<std::int64_t> shape) {
    Tensor probe(nullptr, dtype, shape);
    Tensor view(base_ ? base_ + used_ : nullptr, dtype, shape, device_);
    used_ += (probe.bytes() + 63) / 64 * 64;
    return view;
  }
  std::int64_t used() const { return used_; }

 private:
  char* base_;
  Device device_;
  std::int64_t used_ = 0;
};

std::int64_t carve_all(Activations& a, const GPTConfig& config, DType dtype, Device device, void* base, int B, int T) {
  const std::int64_t C = config.channels, H = config.head_count, Vp = config.padded_vocab_size;
  const DType stats = compute_dtype(dtype);
  const bool fused = a.attention() == AttentionKind::Fused;
  Carver carver(base, device);
  a.tokens = carver.take(DType::I32, {B, T});
  a.targets = carver.take(DType::I32, {B, T});
  a.embedded = carver.take(dtype, {B, T, C});
  a.blocks.resize(config.layer_count);
  for (BlockActivations& block : a.blocks) {
    block.ln1 = carver.take(dtype, {B, T, C});
    block.ln1_mean = carver.take(stats, {B, T});
    block.ln1_rstd = carver.take(stats, {B, T});
    block.qkv = carver.take(dtype, {B, T, 3 * C});
    block.attention_probs = fused ? Tensor(nullptr, dtype, {0}, device) : carver.take(dtype, {B, H, T, T});
    block.attention_lse = fused ? carver.take(stats, {B, H, T}) : Tensor(nullptr, stats, {0}, device);
    block.attention_out = carver.take(dtype, {B, T, C});
    block.attention_proj = carver.take(dtype, {B, T, C});
    block.residual_attention = carver.take(dtype, {B, T, C});
    block.ln2 = carver.take(dtype, {B, T, C});
    block.ln2_mean = carver.take(stats, {B, T});
    block.ln2_rstd = carver.take(stats, {B, T});
    block.mlp_hidden = carver.take(dtype, {B, T, 4 * C});
    block.mlp_gelu = carver.take(dtype, {B, T, 4 * C});
    block.mlp_proj = carver.take(dtype, {B, T, C});
    block.residual_mlp = carver.take(dtype, {B, T, C});
  }
  a.lnf = carver.take(dtype, {B, T, C});
  a.lnf_mean = carver.take(stats, {B, T});
  a.lnf_rstd = carver.take(stats, {B, T});
  a.logits = carver.take(dtype, {B, T, Vp});
  a.losses = carver.take(stats, {B, T});
  a.d_residual = carver.take(dtype, {B, T, C});
  a.d_channels = carver.take(dtype, {B, T, C});
  a.d_qkv = carver.take(dtype, {B, T, 3 * C});
  a.d_mlp_hidden = carver.take(dtype, {B, T, 4 * C});
  a.d_mlp_gelu = carver.take(dtype, {B, T, 4 * C});
  return carver.used();
}

}  // namespace

Activations::Activations(const GPTConfig& config, DType dtype, int max_batch_size, int max_sequence_length,
                         AttentionKind attention, Device device)
    : config_(config),
      dtype_(dtype),
      max_batch_size_(max_batch_size),
      max_sequence_length_(max_sequence_length),
      attention_(attention) {
  LADDER_CHECK(max_batch_size >= 1, "batch size ", max_batch_size, " must be at least 1");
  LADDER_CHECK(max_sequence_length >= 1 && max_sequence_length <= config.max_sequence_length, "sequence length ",
               max_sequence_length, " must be between 1 and the model's context of ", config.max_sequence_length);
  const std::int64_t bytes = carve_all(*this, config, dtype, device, nullptr, max_batch_size, max_sequence_length);
  storage_ = Buffer(static_cast<std::size_t>(bytes), MemoryCategory::Activations, device);
  shape_for(max_batch_size, max_sequence_length);
}

void Activations::shape_for(int batch_size, int sequence_length) {
  LADDER_CHECK(batch_size >= 1 && batch_size <= max_batch_size_, "batch of ", batch_size,
               " rows does not fit the model's activations, sized for 1 to ", max_batch_size_);
  LADDER_CHECK(sequence_length >= 1 && sequence_length <= max_sequence_length_, "sequence of ", sequence_length,
               " tokens does not fit the model's activations, sized for 1 to ", max_sequence_length_);
  // Every view grows with B and T, so a smaller batch's carving fits inside the block carved for the largest.
  carve_all(*this, config_, dtype_, storage_.device(), storage_.data(), batch_size, sequence_length);
}

}  // namespace ladder
