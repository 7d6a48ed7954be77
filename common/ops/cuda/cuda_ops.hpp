/// @file cuda_ops.hpp
/// @brief The CUDA ops: templates over the storage type S (float, Half, BFloat16) on device pointers.
///
/// The same names and arguments as the CPU reference in cpu_ops.hpp, so that dispatch.cpp can call either.
/// Each kernel reads elements as fp32, computes in fp32 and rounds once on store, exactly like the CPU path.
/// Statistics (LayerNorm mean/rstd, losses, attention log-sum-exp) are fp32. Every launch is checked and
/// names its kernel on failure. All work goes to the default stream, in order, so no call needs a sync.
/// Backward ops accumulate (+=) into their gradients, like the interface.
#pragma once

#include <cstdint>

#include "common/dtype.hpp"
#include "common/ops/ops.hpp"

/// CUDA implementations of the ops of ops.hpp (device pointers, explicit sizes).
namespace ladder::ops::cuda {

/// out (B,T,C) = wte[tokens] + wpe[t]; tokens must lie in [0, V) (checked on the host by the model).
template <class S>
void embedding_forward(S* out, const std::int32_t* tokens, const S* wte, const S* wpe, std::int64_t B, std::int64_t T,
                       std::int64_t C, std::int64_t V);
/// dwte[tokens] += dout and dwpe[t] += dout, deterministic (no atomics on the table).
template <class S>
void embedding_backward(S* dwte, S* dwpe, const S* dout, const std::int32_t* tokens, std::int64_t B, std::int64_t T,
                        std::int64_t C, std::int64_t V);

/// LayerNorm of N rows of C, saving mean and rstd (N, fp32) for backward.
template <class S>
void layernorm_forward(S* out, float* mean, float* rstd, const S* inp, const S* weight, const S* bias, std::int64_t N,
                       std::int64_t C);
/// Accumulates dinp (N,C), and dweight (C) and dbias (C) unless both are nullptr (a frozen LayerNorm).
template <class S>
void layernorm_backward(S* dinp, S* dweight, S* dbias, const S* dout, const S* inp, const S* weight, const float* mean,
                        const float* rstd, std::int64_t N, std::int64_t C);

/// out (N,OC) = inp (N,C) · weight(OC,C)ᵀ + bias (OC) through cuBLASLt (bias fused); bias may be nullptr.
template <class S>
void matmul_forward(S* out, const S* inp, const S* weight, const S* bias, std::int64_t N, std::int64_t C,
                    std::int64_t OC);
/// Accumulates dinp (N,C) and, each unless nullptr, dweight (OC,C) and dbias (OC).
template <class S>
void matmul_backward(S* dinp, S* dweight, S* dbias, const S* dout, const S* inp, const S* weight, std::int64_t N,
                     std::int64_t C, std::int64_t OC);
/// Lets fp32 GEMMs use TF32 tensor cores (off by default: true fp32, as PyTorch's default).
void set_tf32(bool enabled);

/// Causal self-attention that saves the probabilities att (B,heads,T,T), as the CPU reference does.
template <class S>
void attention_forward(S* out, S* att, const S* qkv, std::int64_t B, std::int64_t T, std::int64_t C,
                       std::int64_t heads);
/// Accumulates dqkv (B,T,3C) from dout (B,T,C) and the saved att.
template <class S>
void attention_backward(S* dqkv, const S* dout, const S* qkv, const S* att, std::int64_t B, std::int64_t T,
                        std::int64_t C, std::int64_t heads);

/// Fused causal self-attention (flash style): never stores the T×T scores, saves lse (B,heads,T) fp32, the
/// log-sum-exp of each query's scaled scores.
template <class S>
void flash_attention_forward(S* out, float* lse, const S* qkv, std::int64_t B, std::int64_t T, std::int64_t C,
                             std::int64_t heads);
/// Accumulates dqkv (B,T,3C), recomputing the probabilities from qkv and lse; out is the forward's output.
template <class S>
void flash_attention_backward(S* dqkv, const S* dout, const S* qkv, const S* out, const float* lse, std::int64_t B,
                              std::int64_t T, std::int64_t C, std::int64_t heads);

/// out = GELU(inp) (tanh form), `count` elements.
template <class S>
void gelu_forward(S* out, const S* inp, std::int64_t count);
/// dinp += GELU'(inp) · dout.
template <class S>
void gelu_backward(S* dinp, const S* inp, const S* dout, std::int64_t count);

/// out = inp·scale where dropout_keeps(seed, i, threshold), else 0 (out may alias inp); scale in fp32.
template <class S>
void dropout_forward(S* out, const S* inp, std::uint64_t threshold, double keep_scale, std::uint64_t seed,
                     std::int64_t count);
/// dinp += dout·scale where the forward of that seed kept the element.
template <class S>
void dropout_backward(S* dinp, const S* dout, std::uint64_t threshold, double keep_scale, std::uint64_t seed,
                      std::int64_t count);

/// out = a + b.
template <class S>
void residual_forward(S* out, const S* a, const S* b, std::int64_t count);
/// da += dout; db += dout.
template <class S>
void residual_backward(S* da, S* db, const S* dout, std::int64_t count);

/// Per-row loss (fp32) logsumexp(logits[:V]) - logits[target] over N rows of Vp; 0 where target < 0.
template <class S>
void softmax_cross_entropy_forward(float* losses, const S* logits, const std::int32_t* targets, std::int64_t N,
                                   std::int64_t Vp, std::int64_t V);
/// Overwrites dlogits with dloss·(softmax - onehot); padding columns and ignored rows get 0. May alias logits.
template <class S>
void softmax_cross_entropy_backward(S* dlogits, const S* logits, const std::int32_t* targets, std::int64_t N,
                                    std::int64_t Vp, std::int64_t V, double dloss);

/// Sum of squares accumulated in double (one device-to-host copy of the result).
template <class S>
double sum_of_squares(const S* values, std::int64_t count);
/// values *= factor.
template <class S>
void scale(S* values, double factor, std::int64_t count);
/// destination += source, computed in fp32.
template <class Destination, class Source>
void accumulate(Destination* destination, const Source* source, std::int64_t count);
/// destination = source, rounded once into the destination type.
template <class Destination, class Source>
void convert(Destination* destination, const Source* source, std::int64_t count);

/// One AdamW step over `count` parameters of storage P; grads and moments may be any float dtype.
template <class P>
void adamw_update(P* params, const void* grads, DType grads_dtype, void* first_moment, DType first_moment_dtype,
                  void* second_moment, DType second_moment_dtype, std::int64_t count, const AdamWStep& hyper);

}  // namespace ladder::ops::cuda

/// Applies MACRO to every storage type the CUDA ops support (for explicit instantiation in the .cu files).
#define LADDER_FOR_EACH_CUDA_STORAGE_TYPE(MACRO) \
  MACRO(float)                                   \
  MACRO(::ladder::Half)                          \
  MACRO(::ladder::BFloat16)
