/// @file ops.hpp
/// @brief Every op of the GPT, forward and backward, on Tensor views; dispatched by device and dtype.
///
/// Conventions shared by all ops:
/// - Storage tensors of one call share one dtype (F32, F16, BF16, or F64 for gradient checks on the CPU).
///   Statistics (LayerNorm mean/rstd) and per-position losses use the compute type: F64 for F64
///   storage, F32 otherwise. Token ids and targets are I32.
/// - Reduced precision is emulated exactly: elements are read as fp32, arithmetic accumulates in fp32,
///   and results are rounded once, when stored.
/// - Backward ops ACCUMULATE (+=) into every gradient they write, except
///   softmax_cross_entropy_backward, which overwrites (its output may alias the logits).
/// - Shapes are checked; a mismatch throws LadderError naming the op and the shapes.
/// - Every tensor of one call lives on one device; the call runs there (ops/cpu/ or ops/cuda/). The GPU
///   supports F32, F16 and BF16 storage; F64 is the CPU's, for gradient checks.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "common/tensor.hpp"

namespace ladder::ops {

/// out[b,t,:] = wte[tokens[b,t],:] + wpe[t,:]. out (B,T,C), tokens I32 (B,T), wte (V,C), wpe (maxT,C).
void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe);
/// dwte[tokens[b,t],:] += dout[b,t,:]; dwpe[t,:] += dout[b,t,:].
void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens);

/// LayerNorm over the last axis with eps 1e-5. inp/out (N,C) (any leading shape flattened), weight/bias (C),
/// mean/rstd (N) in the compute type, saved for backward.
void layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor weight, Tensor bias);
/// Accumulates dinp (N,C), dweight (C), dbias (C) from dout (N,C); empty dweight and dbias (both) are skipped: a
/// frozen LayerNorm.
void layernorm_backward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight,
                        Tensor mean, Tensor rstd);

/// out (N,OC) = inp (N,C) · weightᵀ + bias, with weight (OC,C) and bias (OC); an empty bias (numel 0) means none.
void matmul_forward(Tensor out, Tensor inp, Tensor weight, Tensor bias);
/// Accumulates dinp (N,C) += dout·weight, dweight (OC,C) += doutᵀ·inp, dbias (OC) += column sums of dout
/// (dweight and dbias each skipped when empty: a frozen weight, or no bias).
void matmul_backward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight);

/// Causal multi-head self-attention. qkv (B,T,3C) holds q, k, v side by side, each split into n_head heads of
/// C/n_head; out (B,T,C) is the heads' outputs concatenated; att (B,n_head,T,T) saves the softmax
/// probabilities (scale 1/sqrt(C/n_head); entries above the diagonal are zero).
void attention_forward(Tensor out, Tensor att, Tensor qkv, int n_head);
/// Accumulates dqkv (B,T,3C) from dout (B,T,C), using the saved att.
void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor att, int n_head);

/// The same attention without the T×T probabilities (flash style): lse (B,n_head,T), compute type, saves each
/// query's log-sum-exp of its scaled scores, from which backward recomputes the probabilities block by block.
/// O(T) memory per query instead of O(T²); the GPU model uses it.
void flash_attention_forward(Tensor out, Tensor lse, Tensor qkv, int n_head);
/// Accumulates dqkv (B,T,3C) from dout (B,T,C), given the forward's qkv, out and lse.
void flash_attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse, int n_head);

/// GELU, tanh approximation: 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))). out and inp have equal shapes.
void gelu_forward(Tensor out, Tensor inp);
/// Accumulates dinp from dout at the forward input inp.
void gelu_backward(Tensor dinp, Tensor inp, Tensor dout);

/// Inverted dropout: out = inp / (1 - probability) where the mask keeps an element, else 0; probability in [0, 1).
/// The mask is a pure function of (seed, element index), the same on both devices, so backward regenerates it and
/// none is stored. out may alias inp.
void dropout_forward(Tensor out, Tensor inp, double probability, std::uint64_t seed);
/// Accumulates dinp += dout / (1 - probability) where the forward with this seed kept an element.
void dropout_backward(Tensor dinp, Tensor dout, double probability, std::uint64_t seed);

/// out = a + b, elementwise (equal shapes).
void residual_forward(Tensor out, Tensor a, Tensor b);
/// Accumulates da += dout and db += dout.
void residual_backward(Tensor da, Tensor db, Tensor dout);

/// losses (N) in the compute type: logsumexp(logits[i, :vocab_size]) - logits[i, targets[i]], or 0 where
/// targets[i] < 0 (ignored). logits (N,Vp) with Vp >= vocab_size; columns >= vocab_size are padding and
/// take no part. targets I32 (N).
void softmax_cross_entropy_forward(Tensor losses, Tensor logits, Tensor targets, std::int64_t vocab_size);
/// Overwrites dlogits (N,Vp) with dloss·(softmax(logits[i,:vocab_size]) - onehot(targets[i])); padding
/// columns and ignored rows get 0. dlogits may be the same memory as logits.
void softmax_cross_entropy_backward(Tensor dlogits, Tensor logits, Tensor targets, std::int64_t vocab_size,
                                    double dloss);

/// start + the sum of squares of all elements, accumulated in double (for the global gradient norm). On the CPU the
/// squares are added one by one in element order after `start`, so a sum can be continued piece by piece.
double sum_of_squares(Tensor values, double start = 0.0);
/// True when no element is inf or NaN (the loss scaler's overflow check). On the CPU a scan of the exponent bits,
/// spread over the threads; on the GPU the sum of squares in double, finite exactly when every element is.
bool all_finite(Tensor values);
/// values *= factor, elementwise (rounded once on store).
void scale(Tensor values, double factor);
/// destination += source, elementwise (equal element counts).
void accumulate(Tensor destination, Tensor source);
/// Copies with conversion: destination = source rounded to destination's dtype (equal element counts).
void convert(Tensor destination, Tensor source);
/// Sets every element to zero (backward ops accumulate, so their outputs start from here).
void set_zero(Tensor values);
/// Copies the bytes of source into destination, across devices where they differ (equal dtype and numel). From the
/// meta device, host memory reads zeros; to it, nothing is written.
void copy(Tensor destination, Tensor source);
/// `values` itself when it is in host memory, else a flat host copy of it held in `staging` (resized to fit):
/// how host code (checkpoints, diagnostics) reads a tensor wherever it lives.
Tensor readable_on_host(Tensor values, std::vector<unsigned char>& staging);
/// convert() between devices: source is staged through host memory and converted there. For set-up,
/// checkpoints and diagnostics, not for the training loop.
void convert_between_devices(Tensor destination, Tensor source);

/// Hyper-parameters of one AdamW step (PyTorch's torch.optim.AdamW semantics).
struct AdamWStep {
  double learning_rate = 1e-3;  ///< lr at this step
  double beta1 = 0.9;           ///< first-moment decay
  double beta2 = 0.95;          ///< second-moment decay
  double epsilon = 1e-8;        ///< added to sqrt(v̂)
  double weight_decay = 0.0;    ///< decoupled decay for this span (0 for biases and norms)
  std::int64_t step = 1;        ///< 1-based step count for bias correction
  double gradient_scale = 1.0;  ///< multiplies each gradient first (clipping and unscaling)
};
/// One AdamW update of a span: g = grads·gradient_scale; params -= lr·wd·params; m = β1·m + (1-β1)·g;
/// v = β2·v + (1-β2)·g²; params -= lr/(1-β1^t) · m / (sqrt(v)/sqrt(1-β2^t) + ε). params, m, v may be any float
/// dtype (stage 02 keeps all in fp16); grads are converted on read. All four spans have equal numel. Given a
/// `rounded_copy` (of fp32 params: the master weights), it ends equal to convert(rounded_copy, params), made in the
/// update's own pass on the CPU.
void adamw_update(Tensor params, Tensor grads, Tensor first_moment, Tensor second_moment, const AdamWStep& hyper,
                  Tensor rounded_copy = Tensor());

/// Threads of the CPU ops (GEMM blocks and the larger loops); 0 is the default: OPENBLAS_NUM_THREADS, else all cores.
void set_cpu_threads(int threads);
/// How the CPU path runs its GEMMs (library, threads, how fp16/bf16 reach it): one line for a stage's log.
std::string cpu_gemm_description();
/// Lets fp32 GEMMs on the GPU use TF32 tensor cores (default off: true fp32). Throws in a build without CUDA.
void set_tf32(bool enabled);

}  // namespace ladder::ops
