// Every CUDA op against the CPU reference op, forward and backward, on fresh random inputs.
//
// Each test makes its inputs on the host, uploads the same bytes to the GPU, poisons every output with NaN on both
// devices, runs the CPU op on the host tensors and the CUDA op on the GPU tensors, and compares the results
// element by element (cuda_test_support.hpp). Backward ops get identical inputs: the CPU forward's results are
// uploaded first, so a backward test checks the backward alone. Shapes include sizes that are multiples of no
// block size (7 rows; 5, 33 or 769 channels; T = 7, 17, 33, 65 or 130; head sizes 4 and 20).
//
// Tolerances, per element: of_largest·max|cpu| + 2 ulps of the storage type·|cpu element|.
// - kExact (0): copy, set_zero and convert only move bits or round once to nearest even, on both devices alike.
// - kElementwise (1e-5): a few fp32 operations per element, where the GPU may differ by contracting a·b + c into
//   one FMA or by its own tanh/exp/sqrt: a few fp32 ulps (~1e-7). An indexing or formula error is off by O(1).
// - kReduction (1e-4): GEMMs, LayerNorm, attention and the loss sum up to 50257 terms in another (blocked,
//   tree-shaped) order than the CPU; fp32 summation error grows like sqrt(terms)·2^-24, about 1e-5 here. fp32
//   GEMMs are true fp32 (TF32 is off by default), which this assumes.
// The ulp term matters for F16 and BF16 (2·2^-10 and 2·2^-7 relative): two fp32 results a hair apart may round to
// neighbouring 16-bit values. All three storage types run through every op except materialised attention.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/memory.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"
#include "tests/cuda_test_support.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using testing_support::error_message_of;
using testing_support::expect_close;
using testing_support::expect_gpu_matches_cpu;
using testing_support::MirroredTensor;
using testing_support::Tolerance;

constexpr Tolerance kExact{0.0, 0.0};
constexpr Tolerance kElementwise{1e-5};
constexpr Tolerance kReduction{1e-4};
constexpr DType kStorageTypes[] = {DType::F32, DType::F16, DType::BF16};

#ifdef LADDER_WITH_CUDA
constexpr const char* kWhyNoGpu = "no CUDA GPU visible (cuda_device_count() is 0): the CUDA ops are compiled but "
                                  "cannot run here";
#else
constexpr const char* kWhyNoGpu = "this build has no CUDA (cuda_device_count() is 0): there are no CUDA ops to run";
#endif

class CudaOps : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << kWhyNoGpu;
  }
  Random random_{20240611};
};

std::string label(const char* op, std::initializer_list<std::int64_t> sizes) {
  std::string text = op;
  for (std::int64_t size : sizes) {
    text += ' ';
    text += std::to_string(size);
  }
  return text;
}

// Expects the message to contain every fragment.
void expect_mentions(const std::string& message, std::initializer_list<const char*> fragments) {
  for (const char* fragment : fragments) {
    EXPECT_NE(message.find(fragment), std::string::npos) << "'" << fragment << "' missing from: " << message;
  }
}

TEST_F(CudaOps, CopyAndSetZeroWriteEveryElement) {
  for (DType dtype : kStorageTypes) {
    for (std::int64_t count : {7, 4099}) {
      MirroredTensor source(dtype, {count}), destination(dtype, {count});
      source.fill_normal(random_);
      expect_gpu_matches_cpu(source, kExact, label("host to device and back", {count}));
      destination.poison();
      ops::copy(destination.gpu(), source.gpu());
      expect_close(destination.gpu_values(), source.cpu_values(), dtype, kExact, label("device to device", {count}));
      destination.poison();
      ops::set_zero(destination.cpu());
      ops::set_zero(destination.gpu());
      expect_gpu_matches_cpu(destination, kExact, label("set_zero", {count}));
    }
  }
}

TEST_F(CudaOps, ConvertAndAccumulateBetweenEveryPairOfDtypes) {
  for (DType destination_dtype : kStorageTypes) {
    for (DType source_dtype : kStorageTypes) {
      SCOPED_TRACE(dtype_name(destination_dtype) + " from " + dtype_name(source_dtype));
      MirroredTensor source(source_dtype, {4099}), destination(destination_dtype, {4099});
      // Magnitudes from 2^-30 to 2^10 reach fp16's subnormals and rounding in every binade.
      source.assign([&](std::int64_t) {
        const int exponent = static_cast<int>(random_.below(40)) - 30;
        return static_cast<float>(std::ldexp(random_.normal(), exponent));
      });
      destination.poison();
      ops::convert(destination.cpu(), source.cpu());
      ops::convert(destination.gpu(), source.gpu());
      expect_gpu_matches_cpu(destination, kExact, "convert");
      destination.fill_normal(random_);
      source.fill_normal(random_);
      ops::accumulate(destination.cpu(), source.cpu());
      ops::accumulate(destination.gpu(), source.gpu());
      expect_gpu_matches_cpu(destination, kElementwise, "accumulate");
    }
  }
}

TEST_F(CudaOps, ScaleAndSumOfSquares) {
  for (DType dtype : kStorageTypes) {
    for (std::int64_t count : {1, 7, 1000, (1 << 20) + 3}) {
      MirroredTensor values(dtype, {count});
      values.fill_normal(random_);
      ops::scale(values.cpu(), 0.37);
      ops::scale(values.gpu(), 0.37);
      expect_gpu_matches_cpu(values, kElementwise, label("scale", {count}));
      // Both accumulate squares in double; an fp32 square is off by at most 2^-24 relative, and a sum of
      // positive terms keeps that relative bound.
      const double cpu = ops::sum_of_squares(values.cpu());
      EXPECT_NEAR(ops::sum_of_squares(values.gpu()), cpu, 1e-6 * cpu) << label("sum_of_squares", {count});
    }
  }
}

TEST_F(CudaOps, EmbeddingForwardAndBackward) {
  struct Shape { std::int64_t B, T, C, V, max_T; };
  for (DType dtype : kStorageTypes) {
    for (const Shape& s : {Shape{2, 7, 5, 11, 9}, Shape{3, 65, 769, 50, 70}}) {
      const std::string name = label("embedding", {s.B, s.T, s.C, s.V});
      MirroredTensor tokens(DType::I32, {s.B, s.T}), wte(dtype, {s.V, s.C}), wpe(dtype, {s.max_T, s.C});
      MirroredTensor out(dtype, {s.B, s.T, s.C}), dout(dtype, {s.B, s.T, s.C});
      MirroredTensor dwte(dtype, {s.V, s.C}), dwpe(dtype, {s.max_T, s.C});
      // Few tokens for many positions: most ids repeat, so backward must sum several rows into one.
      tokens.assign([&](std::int64_t) { return double(random_.below(std::uint64_t(s.V))); });
      wte.fill_normal(random_);
      wpe.fill_normal(random_);
      out.poison();
      ops::embedding_forward(out.cpu(), tokens.cpu(), wte.cpu(), wpe.cpu());
      ops::embedding_forward(out.gpu(), tokens.gpu(), wte.gpu(), wpe.gpu());
      expect_gpu_matches_cpu(out, kElementwise, name + " out");
      dout.fill_normal(random_);
      dwte.fill_normal(random_);
      dwpe.fill_normal(random_);
      ops::embedding_backward(dwte.cpu(), dwpe.cpu(), dout.cpu(), tokens.cpu());
      ops::embedding_backward(dwte.gpu(), dwpe.gpu(), dout.gpu(), tokens.gpu());
      expect_gpu_matches_cpu(dwte, kReduction, name + " dwte");
      expect_gpu_matches_cpu(dwpe, kReduction, name + " dwpe");
    }
  }
}

TEST_F(CudaOps, ResidualAndGeluForwardAndBackward) {
  for (DType dtype : kStorageTypes) {
    for (std::int64_t count : {7, 999, 65 * 769}) {
      MirroredTensor a(dtype, {count}), b(dtype, {count}), out(dtype, {count}), dout(dtype, {count});
      MirroredTensor da(dtype, {count}), db(dtype, {count});
      for (MirroredTensor* tensor : {&b, &dout, &da, &db}) tensor->fill_normal(random_);
      a.fill_normal(random_, 2.0);  // GELU's tanh saturates beyond |x| ≈ 3
      out.poison();
      ops::residual_forward(out.cpu(), a.cpu(), b.cpu());
      ops::residual_forward(out.gpu(), a.gpu(), b.gpu());
      expect_gpu_matches_cpu(out, kElementwise, label("residual out", {count}));
      ops::residual_backward(da.cpu(), db.cpu(), dout.cpu());
      ops::residual_backward(da.gpu(), db.gpu(), dout.gpu());
      expect_gpu_matches_cpu(da, kElementwise, label("residual da", {count}));
      expect_gpu_matches_cpu(db, kElementwise, label("residual db", {count}));

      out.poison();
      ops::gelu_forward(out.cpu(), a.cpu());
      ops::gelu_forward(out.gpu(), a.gpu());
      expect_gpu_matches_cpu(out, kElementwise, label("gelu out", {count}));
      da.fill_normal(random_);  // fresh, identical starting content for the += of gelu_backward
      ops::gelu_backward(da.cpu(), a.cpu(), dout.cpu());
      ops::gelu_backward(da.gpu(), a.gpu(), dout.gpu());
      expect_gpu_matches_cpu(da, kElementwise, label("gelu dinp", {count}));
    }
  }
}

struct RowsShape { std::int64_t N, C; };
constexpr RowsShape kLayerNormShapes[] = {{7, 5}, {33, 769}, {256, 768}};

TEST_F(CudaOps, LayerNormForwardAndBackward) {
  for (DType dtype : kStorageTypes) {
    for (auto [N, C] : kLayerNormShapes) {
      const std::string name = label("layernorm", {N, C});
      MirroredTensor inp(dtype, {N, C}), weight(dtype, {C}), bias(dtype, {C}), out(dtype, {N, C});
      MirroredTensor mean(DType::F32, {N}), rstd(DType::F32, {N});
      // An offset from zero: a one-pass variance (E[x²] - E[x]²) would lose digits where the CPU's two passes do not.
      inp.assign([&](std::int64_t) { return static_cast<float>(3.0 + random_.normal()); });
      weight.fill_normal(random_);
      bias.fill_normal(random_);
      out.poison();
      mean.poison();
      rstd.poison();
      ops::layernorm_forward(out.cpu(), mean.cpu(), rstd.cpu(), inp.cpu(), weight.cpu(), bias.cpu());
      ops::layernorm_forward(out.gpu(), mean.gpu(), rstd.gpu(), inp.gpu(), weight.gpu(), bias.gpu());
      expect_gpu_matches_cpu(out, kReduction, name + " out");
      expect_gpu_matches_cpu(mean, kReduction, name + " mean");
      expect_gpu_matches_cpu(rstd, kReduction, name + " rstd");
      mean.upload();
      rstd.upload();
      MirroredTensor dout(dtype, {N, C}), dinp(dtype, {N, C}), dweight(dtype, {C}), dbias(dtype, {C});
      for (MirroredTensor* tensor : {&dout, &dinp, &dweight, &dbias}) tensor->fill_normal(random_);
      ops::layernorm_backward(dinp.cpu(), dweight.cpu(), dbias.cpu(), dout.cpu(), inp.cpu(), weight.cpu(), mean.cpu(),
                              rstd.cpu());
      ops::layernorm_backward(dinp.gpu(), dweight.gpu(), dbias.gpu(), dout.gpu(), inp.gpu(), weight.gpu(), mean.gpu(),
                              rstd.gpu());
      expect_gpu_matches_cpu(dinp, kReduction, name + " dinp");
      expect_gpu_matches_cpu(dweight, kReduction, name + " dweight");
      expect_gpu_matches_cpu(dbias, kReduction, name + " dbias");
    }
  }
}

TEST_F(CudaOps, MatmulForwardAndBackward) {
  struct Shape { std::int64_t N, C, OC; bool with_bias; };
  for (DType dtype : kStorageTypes) {
    for (const Shape& s : {Shape{7, 5, 3, true}, Shape{33, 769, 65, true}, Shape{130, 128, 384, true},
                           Shape{7, 33, 11, false}}) {
      const std::string name = label(s.with_bias ? "matmul" : "matmul without bias", {s.N, s.C, s.OC});
      MirroredTensor inp(dtype, {s.N, s.C}), weight(dtype, {s.OC, s.C}), bias(dtype, {s.OC}), out(dtype, {s.N, s.OC});
      MirroredTensor dout(dtype, {s.N, s.OC}), dinp(dtype, {s.N, s.C}), dweight(dtype, {s.OC, s.C}), dbias(dtype, {s.OC});
      for (MirroredTensor* tensor : {&inp, &weight, &bias, &dout, &dinp, &dweight, &dbias}) tensor->fill_normal(random_);
      out.poison();
      // No bias is an absent tensor, as the model passes it for the tied lm_head.
      const auto maybe = [&](Tensor tensor) { return s.with_bias ? tensor : Tensor(); };
      ops::matmul_forward(out.cpu(), inp.cpu(), weight.cpu(), maybe(bias.cpu()));
      ops::matmul_forward(out.gpu(), inp.gpu(), weight.gpu(), maybe(bias.gpu()));
      expect_gpu_matches_cpu(out, kReduction, name + " out");
      ops::matmul_backward(dinp.cpu(), dweight.cpu(), maybe(dbias.cpu()), dout.cpu(), inp.cpu(), weight.cpu());
      ops::matmul_backward(dinp.gpu(), dweight.gpu(), maybe(dbias.gpu()), dout.gpu(), inp.gpu(), weight.gpu());
      expect_gpu_matches_cpu(dinp, kReduction, name + " dinp");
      expect_gpu_matches_cpu(dweight, kReduction, name + " dweight");
      expect_gpu_matches_cpu(dbias, kReduction, name + " dbias (untouched without bias)");
    }
  }
}

struct AttentionShape { std::int64_t B, T, C; int heads; };
// Head sizes 4, 20, 32, 64 and 128 (the flash kernels pad a head to 16, 32, 64 or 128 entries); T = 17, 33, 65
// and 130 fill the GPU kernels' blocks of rows unevenly.
constexpr AttentionShape kAttentionShapes[] = {
    {2, 7, 12, 3}, {1, 17, 60, 3}, {1, 65, 64, 2}, {2, 130, 128, 2}, {1, 33, 256, 2}};

// F32 only: with 16-bit storage the saved probabilities are rounded, and the CPU's output uses the unrounded
// ones, so a GPU that multiplies the stored att by v would differ legitimately. The GPU model uses flash attention.
TEST_F(CudaOps, MaterialisedAttentionForwardAndBackward) {
  const DType dtype = DType::F32;
  for (const AttentionShape& s : kAttentionShapes) {
    const std::string name = label("attention", {s.B, s.T, s.C, s.heads});
    MirroredTensor qkv(dtype, {s.B, s.T, 3 * s.C}), out(dtype, {s.B, s.T, s.C}), att(dtype, {s.B, s.heads, s.T, s.T});
    MirroredTensor dout(dtype, {s.B, s.T, s.C}), dqkv(dtype, {s.B, s.T, 3 * s.C});
    qkv.fill_normal(random_);
    out.poison();
    att.poison();  // the zeros above the diagonal must be written too
    ops::attention_forward(out.cpu(), att.cpu(), qkv.cpu(), s.heads);
    ops::attention_forward(out.gpu(), att.gpu(), qkv.gpu(), s.heads);
    expect_gpu_matches_cpu(out, kReduction, name + " out");
    expect_gpu_matches_cpu(att, kReduction, name + " att");
    att.upload();
    dout.fill_normal(random_);
    dqkv.fill_normal(random_);
    ops::attention_backward(dqkv.cpu(), dout.cpu(), qkv.cpu(), att.cpu(), s.heads);
    ops::attention_backward(dqkv.gpu(), dout.gpu(), qkv.gpu(), att.gpu(), s.heads);
    expect_gpu_matches_cpu(dqkv, kReduction, name + " dqkv");
  }
}

TEST_F(CudaOps, FlashAttentionForwardAndBackward) {
  for (DType dtype : kStorageTypes) {
    for (const AttentionShape& s : kAttentionShapes) {
      const std::string name = label("flash attention", {s.B, s.T, s.C, s.heads});
      MirroredTensor qkv(dtype, {s.B, s.T, 3 * s.C}), out(dtype, {s.B, s.T, s.C}), lse(DType::F32, {s.B, s.heads, s.T});
      MirroredTensor dout(dtype, {s.B, s.T, s.C}), dqkv(dtype, {s.B, s.T, 3 * s.C});
      qkv.fill_normal(random_);
      out.poison();
      lse.poison();
      ops::flash_attention_forward(out.cpu(), lse.cpu(), qkv.cpu(), s.heads);
      ops::flash_attention_forward(out.gpu(), lse.gpu(), qkv.gpu(), s.heads);
      expect_gpu_matches_cpu(out, kReduction, name + " out");
      expect_gpu_matches_cpu(lse, kReduction, name + " lse");
      out.upload();
      lse.upload();
      dout.fill_normal(random_);
      dqkv.fill_normal(random_);
      ops::flash_attention_backward(dqkv.cpu(), dout.cpu(), qkv.cpu(), out.cpu(), lse.cpu(), s.heads);
      ops::flash_attention_backward(dqkv.gpu(), dout.gpu(), qkv.gpu(), out.gpu(), lse.gpu(), s.heads);
      expect_gpu_matches_cpu(dqkv, kReduction, name + " dqkv");
    }
  }
}

TEST_F(CudaOps, SoftmaxCrossEntropyForwardAndBackward) {
  struct Shape { std::int64_t N, V, padded_V; };
  for (DType dtype : kStorageTypes) {
    for (const Shape& s : {Shape{7, 11, 16}, Shape{5, 50257, 50304}}) {
      const std::string name = label("cross entropy", {s.N, s.V, s.padded_V});
      MirroredTensor logits(dtype, {s.N, s.padded_V}), targets(DType::I32, {s.N}), losses(DType::F32, {s.N});
      MirroredTensor dlogits(dtype, {s.N, s.padded_V}), in_place(dtype, {s.N, s.padded_V});
      // NaN in the padding columns: any kernel that lets them take part produces NaN.
      logits.assign([&](std::int64_t i) { return i % s.padded_V >= s.V ? NAN : static_cast<float>(2 * random_.normal()); });
      // Row 0 targets the last real column; every third row from 1 on is ignored (-1).
      targets.assign([&](std::int64_t n) { return n == 0 ? double(s.V - 1) : n % 3 == 1 ? -1.0 : double(random_.below(s.V)); });
      losses.poison();
      ops::softmax_cross_entropy_forward(losses.cpu(), logits.cpu(), targets.cpu(), s.V);
      ops::softmax_cross_entropy_forward(losses.gpu(), logits.gpu(), targets.gpu(), s.V);
      expect_gpu_matches_cpu(losses, kReduction, name + " losses");
      const double dloss = 1.0 / static_cast<double>(s.N - (s.N + 1) / 3);  // the mean over the rows that count
      dlogits.poison();
      ops::softmax_cross_entropy_backward(dlogits.cpu(), logits.cpu(), targets.cpu(), s.V, dloss);
      ops::softmax_cross_entropy_backward(dlogits.gpu(), logits.gpu(), targets.gpu(), s.V, dloss);
      expect_gpu_matches_cpu(dlogits, kReduction, name + " dlogits");
      // The model overwrites its logits with their gradient: dlogits and logits the same memory.
      const std::vector<double> logit_values = logits.cpu_values();
      in_place.assign([&](std::int64_t i) { return logit_values[i]; });
      ops::softmax_cross_entropy_backward(in_place.gpu(), in_place.gpu(), targets.gpu(), s.V, dloss);
      expect_close(in_place.gpu_values(), dlogits.cpu_values(), dtype, kReduction, name + " dlogits in place");
    }
  }
}

TEST_F(CudaOps, AdamWUpdatesParametersAndMoments) {
  struct Dtypes { DType params, grads, moments; };
  // fp32 throughout; fp16 throughout (stage 02); bf16 weights with fp32 state; 16-bit gradients into fp32 state.
  const Dtypes combinations[] = {{DType::F32, DType::F32, DType::F32}, {DType::F16, DType::F16, DType::F16},
                                 {DType::BF16, DType::BF16, DType::F32}, {DType::F32, DType::F16, DType::F32},
                                 {DType::F32, DType::BF16, DType::F32}};
  ops::AdamWStep hyper;
  hyper.learning_rate = 1e-2;
  hyper.weight_decay = 0.1;
  hyper.step = 3;  // bias correction is not 1
  hyper.gradient_scale = 0.5;
  for (const Dtypes& d : combinations) {
    for (std::int64_t count : {7, 4099}) {
      SCOPED_TRACE(label("adamw", {count}) + " params " + dtype_name(d.params) + ", grads " + dtype_name(d.grads) +
                   ", moments " + dtype_name(d.moments));
      MirroredTensor params(d.params, {count}), grads(d.grads, {count});
      MirroredTensor first_moment(d.moments, {count}), second_moment(d.moments, {count});
      params.fill_normal(random_, 0.05);  // small weights, so each update is a visible fraction of them
      grads.fill_normal(random_);
      first_moment.fill_normal(random_, 0.1);
      second_moment.assign([&](std::int64_t) { return static_cast<float>(0.01 * std::pow(random_.normal(), 2)); });
      ops::adamw_update(params.cpu(), grads.cpu(), first_moment.cpu(), second_moment.cpu(), hyper);
      ops::adamw_update(params.gpu(), grads.gpu(), first_moment.gpu(), second_moment.gpu(), hyper);
      expect_gpu_matches_cpu(params, kElementwise, "params");
      expect_gpu_matches_cpu(first_moment, kElementwise, "first_moment");
      expect_gpu_matches_cpu(second_moment, kElementwise, "second_moment");
    }
  }
}

TEST_F(CudaOps, MixedDevicesAreRefusedNamingTheArgument) {
  MirroredTensor inp(DType::F32, {4, 8}), out(DType::F32, {4, 8}), weight(DType::F32, {3, 8}), bias(DType::F32, {3});
  MirroredTensor projected(DType::F32, {4, 3}), mean(DType::F32, {4}), rstd(DType::F32, {4});
  MirroredTensor gamma(DType::F32, {8}), beta(DType::F32, {8});
  expect_mentions(error_message_of([&] { ops::gelu_forward(out.gpu(), inp.cpu()); }),
                  {"gelu_forward", "inp", "cpu", "cuda"});
  expect_mentions(
      error_message_of([&] { ops::matmul_forward(projected.gpu(), inp.gpu(), weight.cpu(), bias.gpu()); }),
      {"matmul_forward", "weight", "cpu", "cuda"});
  expect_mentions(error_message_of([&] {
                    ops::layernorm_forward(out.gpu(), mean.cpu(), rstd.gpu(), inp.gpu(), gamma.gpu(), beta.gpu());
                  }),
                  {"layernorm_forward", "mean", "cpu", "cuda"});
}

TEST_F(CudaOps, F64TensorsOnTheGpuAreRefused) {
  const Buffer memory(8 * sizeof(double), MemoryCategory::Activations, Device::CUDA);
  const Tensor values = view_of(memory, DType::F64);
  expect_mentions(error_message_of([&] { ops::gelu_forward(values, values); }), {"gelu_forward", "F64"});
  expect_mentions(error_message_of([&] { ops::sum_of_squares(values); }), {"sum_of_squares", "F64"});
}

}  // namespace
}  // namespace ladder
