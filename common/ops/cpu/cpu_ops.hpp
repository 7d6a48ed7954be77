/// @file cpu_ops.hpp
/// @brief The CPU reference ops: templates over the storage type S (float, double, Half, BFloat16) on raw pointers.
///
/// Each reads elements with `load<S>()`, computes in `ComputeType<S>` and writes with `store<S>()`, so fp16/bf16 are
/// rounded once, when stored. Shapes arrive as explicit sizes; the Tensor-level checks live in dispatch.cpp.
/// Buffers are row-major and contiguous. Backward ops accumulate (+=) into their gradients, like the interface.
#pragma once

#include <cstdint>

#include "common/dtype.hpp"
#include "common/ops/ops.hpp"

namespace ladder::ops::cpu {

/// out (B,T,C) = wte[tokens] + wpe[t]; throws on a token outside [0, V).
template <class S>
void embedding_forward(S* out, const std::int32_t* tokens, const S* wte, const S* wpe, std::int64_t B, std::int64_t T,
                       std::int64_t C, std::int64_t V);
/// dwte[tokens] += dout and dwpe[t] += dout, each gradient row rounded once.
template <class S>
void embedding_backward(S* dwte, S* dwpe, const S* dout, const std::int32_t* tokens, std::int64_t B, std::int64_t T,
                        std::int64_t C, std::int64_t V);

/// LayerNorm of N rows of C, saving mean and rstd (N) for backward.
template <class S>
void layernorm_forward(S* out, ComputeType<S>* mean, ComputeType<S>* rstd, const S* inp, const S* weight, const S* bias,
                       std::int64_t N, std::int64_t C);
/// Accumulates dinp (N,C), and dweight (C) and dbias (C) unless both are nullptr (a frozen LayerNorm).
template <class S>
void layernorm_backward(S* dinp, S* dweight, S* dbias, const S* dout, const S* inp, const S* weight,
                        const ComputeType<S>* mean, const ComputeType<S>* rstd, std::int64_t N, std::int64_t C);

/// out (N,OC) = inp (N,C) · weight(OC,C)ᵀ + bias (OC); bias may be nullptr.
template <class S>
void matmul_forward(S* out, const S* inp, const S* weight, const S* bias, std::int64_t N, std::int64_t C,
                    std::int64_t OC);
/// Accumulates dinp (N,C) and, each unless nullptr, dweight (OC,C) and dbias (OC).
template <class S>
void matmul_backward(S* dinp, S* dweight, S* dbias, const S* dout, const S* inp, const S* weight, std::int64_t N,
                     std::int64_t C, std::int64_t OC);

/// Causal self-attention of qkv (B,T,3C) with `heads` heads into out (B,T,C), saving att (B,heads,T,T).
template <class S>
void attention_forward(S* out, S* att, const S* qkv, std::int64_t B, std::int64_t T, std::int64_t C,
                       std::int64_t heads);
/// Accumulates dqkv (B,T,3C) from dout (B,T,C) and the saved att.
template <class S>
void attention_backward(S* dqkv, const S* dout, const S* qkv, const S* att, std::int64_t B, std::int64_t T,
                        std::int64_t C, std::int64_t heads);

/// Flash-style causal attention: out (B,T,C) and lse (B,heads,T), computed one query row at a time with an
/// online softmax over key blocks, never holding a T×T matrix.
template <class S>
void flash_attention_forward(S* out, ComputeType<S>* lse, const S* qkv, std::int64_t B, std::int64_t T,
                             std::int64_t C, std::int64_t heads);
/// Accumulates dqkv (B,T,3C), recomputing each probability from qkv and lse.
template <class S>
void flash_attention_backward(S* dqkv, const S* dout, const S* qkv, const S* out, const ComputeType<S>* lse,
                              std::int64_t B, std::int64_t T, std::int64_t C, std::int64_t heads);

/// out = GELU(inp) (tanh form), `count` elements.
template <class S>
void gelu_forward(S* out, const S* inp, std::int64_t count);
/// dinp += GELU'(inp) · dout.
template <class S>
void gelu_backward(S* dinp, const S* inp, const S* dout, std::int64_t count);

/// out = inp·scale where dropout_keeps(seed, i, threshold), else 0 (out may alias inp); scale in the compute type.
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
/// values *= factor.
template <class S>
void scale(S* values, double factor, std::int64_t count);
/// destination += source, computed in the destination's compute type.
template <class Destination, class Source>
void accumulate(Destination* destination, const Source* source, std::int64_t count);
/// destination = source, rounded once into the destination type.
template <class Destination, class Source>
void convert(Destination* destination, const Source* source, std::int64_t count);

/// Sum of squares accumulated in double.
template <class S>
double sum_of_squares(const S* values, std::int64_t count, double start);

/// True when none of the `count` values is inf or NaN.
template <class S>
bool all_finite(const S* values, std::int64_t count);

/// Per-row loss logsumexp(logits[:V]) - logits[target] over N rows of Vp (Vp >= V); 0 where target < 0.
template <class S>
void softmax_cross_entropy_forward(ComputeType<S>* losses, const S* logits, const std::int32_t* targets, std::int64_t N,
                                   std::int64_t Vp, std::int64_t V);
/// Overwrites dlogits with dloss·(softmax - onehot); padding columns and ignored rows get 0. May alias logits.
template <class S>
void softmax_cross_entropy_backward(S* dlogits, const S* logits, const std::int32_t* targets, std::int64_t N,
                                    std::int64_t Vp, std::int64_t V, double dloss);

/// One AdamW step over `count` parameters of storage P; grads and moments may be any float dtype (read and
/// rounded through their own dtypes), arithmetic in `ComputeType<P>`. A non-null `rounded_copy` (fp32 params
/// only) also receives each updated parameter rounded into `rounded_copy_dtype`, in the same pass.
template <class P>
void adamw_update(P* params, const void* grads, DType grads_dtype, void* first_moment, DType first_moment_dtype,
                  void* second_moment, DType second_moment_dtype, std::int64_t count, const AdamWStep& hyper,
                  void* rounded_copy, DType rounded_copy_dtype);

}  // namespace ladder::ops::cpu

/// Applies MACRO to every floating-point storage type (for explicit instantiation in the op files).
#define LADDER_FOR_EACH_STORAGE_TYPE(MACRO) \
  MACRO(float)                              \
  MACRO(double)                             \
  MACRO(::ladder::Half)                     \
  MACRO(::ladder::BFloat16)
