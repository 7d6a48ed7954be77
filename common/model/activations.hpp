/// @file activations.hpp
/// @brief The forward values backward needs, and the scratch gradients backward uses, in one accounted block.
#pragma once

#include <vector>

#include "common/memory.hpp"
#include "common/model/gpt_config.hpp"
#include "common/tensor.hpp"

namespace ladder {

/// Saved activations of one transformer block, as views of a B×T batch.
struct BlockActivations {
  Tensor ln1;                        ///< (B,T,C) first LayerNorm output
  Tensor ln1_mean;                   ///< (B,T) its means
  Tensor ln1_rstd;                   ///< (B,T) its reciprocal standard deviations
  Tensor qkv;                        ///< (B,T,3C) query, key, value
  Tensor attention_probs;            ///< (B,H,T,T) softmax of the scores (materialised attention; else empty)
  Tensor attention_lse;              ///< (B,H,T) log-sum-exp of each query's scores (fused attention; else empty)
  Tensor attention_out;              ///< (B,T,C) heads concatenated
  Tensor attention_proj;             ///< (B,T,C) after the output projection
  Tensor residual_attention;         ///< (B,T,C) residual stream after attention
  Tensor ln2;                        ///< (B,T,C) second LayerNorm output
  Tensor ln2_mean;                   ///< (B,T) its means
  Tensor ln2_rstd;                   ///< (B,T) its reciprocal standard deviations
  Tensor mlp_hidden;                 ///< (B,T,4C) before GELU
  Tensor mlp_gelu;                   ///< (B,T,4C) after GELU
  Tensor mlp_proj;                   ///< (B,T,C) after the MLP projection
  Tensor residual_mlp;               ///< (B,T,C) residual stream leaving the block
};

/// How attention keeps what its backward needs.
enum class AttentionKind {
  Materialized,  ///< the T×T probabilities of every head (the CPU reference: plain, O(T²) memory)
  Fused,         ///< one log-sum-exp per query, probabilities recomputed in backward (flash style, O(T))
};

/// All activation memory of the model for up to B×T tokens, accounted as Activations, on one device. Views are
/// re-cut for the batch shape of each forward, so a shorter batch (generation) uses a prefix of each buffer.
class Activations {
 public:
  /// Allocates for `max_batch_size` × `max_sequence_length` tokens with storage `dtype` on `device`.
  Activations(const GPTConfig& config, DType dtype, int max_batch_size, int max_sequence_length, AttentionKind attention,
              Device device);
  /// Re-cuts every view for a batch of `batch_size` × `sequence_length` (within the maximum).
  void shape_for(int batch_size, int sequence_length);
  /// How attention saves its state.
  AttentionKind attention() const { return attention_; }

  Tensor tokens;      ///< (B,T) I32 inputs
  Tensor targets;     ///< (B,T) I32 targets, -1 ignored
  Tensor embedded;    ///< (B,T,C) token + position embeddings
  std::vector<BlockActivations> blocks;  ///< one per layer
  Tensor lnf;         ///< (B,T,C) final LayerNorm output
  Tensor lnf_mean;    ///< (B,T) its means
  Tensor lnf_rstd;    ///< (B,T) its reciprocal standard deviations
  Tensor logits;      ///< (B,T,Vp); overwritten by their gradient in backward
  Tensor losses;      ///< (B,T) per-position loss, compute type
  // Backward scratch, reused by every block (zeroed before each use, as backward ops accumulate).
  Tensor d_residual;  ///< (B,T,C) gradient of the residual stream, flowing down through the blocks
  Tensor d_channels;  ///< (B,T,C) gradient of a LayerNorm output or of the attention output
  Tensor d_qkv;       ///< (B,T,3C)
  Tensor d_mlp_hidden;  ///< (B,T,4C)
  Tensor d_mlp_gelu;    ///< (B,T,4C)

 private:
  GPTConfig config_;
  DType dtype_;
  int max_batch_size_;
  int max_sequence_length_;
  AttentionKind attention_;
  Buffer storage_;
};

}  // namespace ladder
