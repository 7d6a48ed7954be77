// The CPU ops that dominate a training step, alone: achieved FLOP/s for the products (matmul, attention),
// bytes/s for the memory-bound ops (LayerNorm, AdamW) and elements/s for GELU (an exp per element), at the small
// model's shapes and at GPT-2 124M's.
// The counts are what the op must do at least (causal attention: only the products below the diagonal), so a
// faster implementation shows up as a higher rate, never as a different count.
#include <benchmark/benchmark.h>
#include <cblas.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <initializer_list>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "common/dtype.hpp"
#include "common/memory.hpp"
#include "common/model/gpt_config.hpp"
#include "common/model/parameter_layout.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"
#include "common/tensor.hpp"

namespace ladder::bench {
namespace {

// A random tensor with its own storage. Values are N(0, 0.02·scale), GPT-2's initial scale: the speed of these
// ops does not depend on the values, but zeros would let a future fast path skip work that real data needs.
struct OwnedTensor {
  OwnedTensor(DType dtype, std::initializer_list<std::int64_t> shape, std::uint64_t seed, double scale = 1.0) {
    std::int64_t count = 1;
    for (const std::int64_t extent : shape) count *= extent;
    storage = Buffer(static_cast<std::size_t>(count) * dtype_size(dtype), MemoryCategory::Workspace);
    tensor = view_of(storage, dtype).reshaped(shape);
    Buffer values(static_cast<std::size_t>(count) * sizeof(float), MemoryCategory::Workspace);
    float* data = static_cast<float*>(values.data());
    Random random(seed);
    for (std::int64_t i = 0; i < count; ++i) data[i] = static_cast<float>(0.02 * scale * random.normal());
    ops::convert(tensor, view_of(values, DType::F32));
  }
  Buffer storage;
  Tensor tensor;
};

// The compute type of statistics (LayerNorm's mean and rstd): fp32 for every storage type benchmarked here.
constexpr DType kStatistics = DType::F32;

// Products report FLOP/s (their bytes are few per FLOP), the elementwise ops bytes/s (their FLOPs are few per byte).
void add_flop_rate(benchmark::State& state, double flops_per_iteration) {
  state.counters["flops_per_second"] =
      benchmark::Counter(flops_per_iteration * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void add_byte_rate(benchmark::State& state, double bytes_per_iteration) {
  state.counters["bytes_per_second"] = benchmark::Counter(
      bytes_per_iteration * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate, benchmark::Counter::kIs1024);
}

struct MatmulShape {
  std::int64_t N, C, OC;  // tokens, input width, output width
};

void matmul_forward(benchmark::State& state, DType dtype, MatmulShape shape) {
  const auto [N, C, OC] = shape;
  OwnedTensor out(dtype, {N, OC}, 1), inp(dtype, {N, C}, 2, 50), weight(dtype, {OC, C}, 3), bias(dtype, {OC}, 4);
  for (auto _ : state) ops::matmul_forward(out.tensor, inp.tensor, weight.tensor, bias.tensor);
  add_flop_rate(state, 2.0 * N * C * OC);
}

void matmul_backward(benchmark::State& state, DType dtype, MatmulShape shape) {
  const auto [N, C, OC] = shape;
  OwnedTensor dinp(dtype, {N, C}, 1), dweight(dtype, {OC, C}, 2), dbias(dtype, {OC}, 3), dout(dtype, {N, OC}, 4),
      inp(dtype, {N, C}, 5, 50), weight(dtype, {OC, C}, 6);
  for (auto _ : state) {
    ops::matmul_backward(dinp.tensor, dweight.tensor, dbias.tensor, dout.tensor, inp.tensor, weight.tensor);
  }
  add_flop_rate(state, 4.0 * N * C * OC);  // two products of the forward's size: dinp and dweight
}

// The machine's own sgemm, the yardstick of the CPU path's GEMMs: OpenBLAS with its own threads on every core,
// on exactly the fp32 products of matmul_forward (out = inp·weightᵀ) and matmul_backward (dinp += dout·weight,
// dweight += doutᵀ·inp). The CPU ops keep OpenBLAS to one thread and cut the output into blocks of their own
// (common/ops/cpu/gemm.hpp); this shows what that costs, or gains, against OpenBLAS's own threading.
class OpenBlasOnEveryCore {
 public:
  OpenBlasOnEveryCore() : threads_before_(openblas_get_num_threads()) {
    openblas_set_num_threads(static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  }
  ~OpenBlasOnEveryCore() { openblas_set_num_threads(threads_before_); }
  OpenBlasOnEveryCore(const OpenBlasOnEveryCore&) = delete;
  OpenBlasOnEveryCore& operator=(const OpenBlasOnEveryCore&) = delete;

 private:
  int threads_before_;
};

void openblas_sgemm_forward(benchmark::State& state, DType, MatmulShape shape) {
  const auto [N, C, OC] = shape;
  OwnedTensor out(DType::F32, {N, OC}, 1), inp(DType::F32, {N, C}, 2, 50), weight(DType::F32, {OC, C}, 3);
  const OpenBlasOnEveryCore threads;
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, N, OC, C, 1.0f, inp.tensor.as<float>(), C,
                weight.tensor.as<float>(), C, 0.0f, out.tensor.as<float>(), OC);
  }
  add_flop_rate(state, 2.0 * N * C * OC);
}

void openblas_sgemm_backward(benchmark::State& state, DType, MatmulShape shape) {
  const auto [N, C, OC] = shape;
  OwnedTensor dinp(DType::F32, {N, C}, 1), dweight(DType::F32, {OC, C}, 2), dout(DType::F32, {N, OC}, 4),
      inp(DType::F32, {N, C}, 5, 50), weight(DType::F32, {OC, C}, 6);
  const OpenBlasOnEveryCore threads;
  for (auto _ : state) {
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, N, C, OC, 1.0f, dout.tensor.as<float>(), OC,
                weight.tensor.as<float>(), C, 1.0f, dinp.tensor.as<float>(), C);
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, OC, C, N, 1.0f, dout.tensor.as<float>(), OC,
                inp.tensor.as<float>(), C, 1.0f, dweight.tensor.as<float>(), C);
  }
  add_flop_rate(state, 4.0 * N * C * OC);
}

struct AttentionShape {
  std::int64_t B, T, C, H;
};

// Multiply-adds of q·k over the causal triangle and of the probabilities times v: 2·B·C·T(T+1) FLOPs.
double attention_forward_flops(AttentionShape shape) {
  return 2.0 * shape.B * shape.C * shape.T * (shape.T + 1);
}

void attention_forward(benchmark::State& state, DType dtype, AttentionShape shape) {
  const auto [B, T, C, H] = shape;
  OwnedTensor out(dtype, {B, T, C}, 1), att(dtype, {B, H, T, T}, 2), qkv(dtype, {B, T, 3 * C}, 3, 50);
  for (auto _ : state) ops::attention_forward(out.tensor, att.tensor, qkv.tensor, static_cast<int>(H));
  add_flop_rate(state, attention_forward_flops(shape));
}

void attention_backward(benchmark::State& state, DType dtype, AttentionShape shape) {
  const auto [B, T, C, H] = shape;
  OwnedTensor out(dtype, {B, T, C}, 1), att(dtype, {B, H, T, T}, 2), qkv(dtype, {B, T, 3 * C}, 3, 50),
      dqkv(dtype, {B, T, 3 * C}, 4), dout(dtype, {B, T, C}, 5);
  ops::attention_forward(out.tensor, att.tensor, qkv.tensor, static_cast<int>(H));  // backward needs real probabilities
  for (auto _ : state) ops::attention_backward(dqkv.tensor, dout.tensor, qkv.tensor, att.tensor, static_cast<int>(H));
  // Twice the forward's products: the gradient of the probabilities and of v, then of q and of k.
  add_flop_rate(state, 2.0 * attention_forward_flops(shape));
}

struct RowsShape {
  std::int64_t N, C;  // rows (tokens) and width
};

void layernorm_forward(benchmark::State& state, DType dtype, RowsShape shape) {
  const auto [N, C] = shape;
  OwnedTensor out(dtype, {N, C}, 1), mean(kStatistics, {N}, 2), rstd(kStatistics, {N}, 3), inp(dtype, {N, C}, 4, 50),
      weight(dtype, {C}, 5, 50), bias(dtype, {C}, 6);
  for (auto _ : state) ops::layernorm_forward(out.tensor, mean.tensor, rstd.tensor, inp.tensor, weight.tensor, bias.tensor);
  const double size = static_cast<double>(dtype_size(dtype));
  add_byte_rate(state, size * (2 * N * C + 2 * C) + 4.0 * 2 * N);  // inp in, out back; statistics in fp32
}

void layernorm_backward(benchmark::State& state, DType dtype, RowsShape shape) {
  const auto [N, C] = shape;
  OwnedTensor out(dtype, {N, C}, 1), mean(kStatistics, {N}, 2), rstd(kStatistics, {N}, 3), inp(dtype, {N, C}, 4, 50),
      weight(dtype, {C}, 5, 50), bias(dtype, {C}, 6), dinp(dtype, {N, C}, 7), dweight(dtype, {C}, 8),
      dbias(dtype, {C}, 9), dout(dtype, {N, C}, 10);
  ops::layernorm_forward(out.tensor, mean.tensor, rstd.tensor, inp.tensor, weight.tensor, bias.tensor);
  for (auto _ : state) {
    ops::layernorm_backward(dinp.tensor, dweight.tensor, dbias.tensor, dout.tensor, inp.tensor, weight.tensor,
                            mean.tensor, rstd.tensor);
  }
  const double size = static_cast<double>(dtype_size(dtype));
  // Reads dout and inp, accumulates into dinp (read and write), and into dweight and dbias.
  add_byte_rate(state, size * (4 * N * C + 5 * C) + 4.0 * 2 * N);
}

// GELU is bound by its exp, not by memory: its rate is elements per second, comparable across storage types.
void add_element_rate(benchmark::State& state, std::int64_t elements_per_iteration) {
  state.counters["elements_per_second"] = benchmark::Counter(
      static_cast<double>(elements_per_iteration) * static_cast<double>(state.iterations()), benchmark::Counter::kIsRate);
}

void gelu_forward(benchmark::State& state, DType dtype, RowsShape shape) {
  const auto [N, C] = shape;
  OwnedTensor out(dtype, {N, C}, 1), inp(dtype, {N, C}, 2, 50);
  for (auto _ : state) ops::gelu_forward(out.tensor, inp.tensor);
  add_element_rate(state, N * C);
}

void gelu_backward(benchmark::State& state, DType dtype, RowsShape shape) {
  const auto [N, C] = shape;
  OwnedTensor dinp(dtype, {N, C}, 1), inp(dtype, {N, C}, 2, 50), dout(dtype, {N, C}, 3);
  for (auto _ : state) ops::gelu_backward(dinp.tensor, inp.tensor, dout.tensor);
  add_element_rate(state, N * C);
}

void adamw(benchmark::State& state, DType dtype, std::int64_t count) {
  OwnedTensor parameters(dtype, {count}, 1), gradients(dtype, {count}, 2), first_moment(dtype, {count}, 3),
      second_moment(dtype, {count}, 4, 0.01);
  ops::AdamWStep hyper;
  hyper.weight_decay = 0.1;
  for (auto _ : state) {
    ops::adamw_update(parameters.tensor, gradients.tensor, first_moment.tensor, second_moment.tensor, hyper);
    ++hyper.step;
  }
  // Reads the weights, gradients and both moments, writes back the weights and both moments.
  add_byte_rate(state, static_cast<double>(dtype_size(dtype)) * 7.0 * static_cast<double>(count));
}

// Stages 03-06 and 10's optimizer step on fp32 master weights with fp32 moments, reading `working` (fp16 or bf16)
// gradients and rounding the result into the working weights: made in the update's pass (`fused`) or by a
// convert over all the master weights after it, as the stages did before.
void adamw_with_copy_back(benchmark::State& state, DType working, std::int64_t count, bool fused) {
  OwnedTensor master(DType::F32, {count}, 1), gradients(working, {count}, 2), first_moment(DType::F32, {count}, 3),
      second_moment(DType::F32, {count}, 4, 0.01), working_weights(working, {count}, 5);
  ops::AdamWStep hyper;
  hyper.weight_decay = 0.1;
  for (auto _ : state) {
    if (fused) {
      ops::adamw_update(master.tensor, gradients.tensor, first_moment.tensor, second_moment.tensor, hyper,
                        working_weights.tensor);
    } else {
      ops::adamw_update(master.tensor, gradients.tensor, first_moment.tensor, second_moment.tensor, hyper);
      ops::convert(working_weights.tensor, master.tensor);
    }
    ++hyper.step;
  }
  // The least either way must move: the gradient read, the master weights and moments read and written, the
  // working weights written.
  const double working_bytes = static_cast<double>(dtype_size(working));
  add_byte_rate(state, (2 * working_bytes + 6 * 4.0) * static_cast<double>(count));
}

void adamw_then_convert(benchmark::State& state, DType working, std::int64_t count) {
  adamw_with_copy_back(state, working, count, false);
}

void adamw_rounding_into_working(benchmark::State& state, DType working, std::int64_t count) {
  adamw_with_copy_back(state, working, count, true);
}

std::string lowercase_dtype(DType dtype) {
  std::string name = dtype_name(dtype);
  for (char& character : name) character = static_cast<char>(std::tolower(static_cast<unsigned char>(character)));
  return name;
}

template <class Function, class Shape>
void add(const std::string& op, DType dtype, const std::string& shape_name, Function function, Shape shape) {
  const std::string name = "kernel/" + op + "/" + lowercase_dtype(dtype) + "/" + shape_name;
  benchmark::RegisterBenchmark(name.c_str(), [function, dtype, shape](benchmark::State& state) {
    function(state, dtype, shape);
  })
      ->UseRealTime()  // OpenBLAS runs GEMMs on several threads; wall time is what a step waits for
      ->Unit(benchmark::kMicrosecond);
}

bool register_kernel_benchmarks() {
  // "small": the small model at 64×10 tokens (N = 640, C = 128, 4 heads). "gpt2": GPT-2 124M (C = 768, 12 heads)
  // at 1024 tokens for the GEMMs and LayerNorm, and one row of 256 for the quadratic attention loops.
  const MatmulShape small_qkv{640, 128, 384}, gpt2_fc{1024, 768, 3072};
  const AttentionShape small_attention{64, 10, 128, 4}, gpt2_attention{1, 256, 768, 12};
  const RowsShape small_rows{640, 128}, gpt2_rows{1024, 768};
  const std::int64_t small_parameters = ParameterLayout(named_config("small", 16)).padded_size();
  const std::int64_t large_parameters = 16 << 20;  // 16M: far beyond any cache, as GPT-2's 124M are
  for (const DType dtype : {DType::F32, DType::BF16}) {
    add("matmul_forward", dtype, "small_qkv_640x128x384", matmul_forward, small_qkv);
    add("matmul_forward", dtype, "gpt2_fc_1024x768x3072", matmul_forward, gpt2_fc);
    add("matmul_backward", dtype, "small_qkv_640x128x384", matmul_backward, small_qkv);
    add("matmul_backward", dtype, "gpt2_fc_1024x768x3072", matmul_backward, gpt2_fc);
  }
  // The four linear layers of GPT-2 124M at the CPU step benchmark's 4×64 tokens, in every storage type of the
  // ladder, beside the machine's own sgemm on the same fp32 products.
  const std::pair<std::string, MatmulShape> gpt2_step_layers[] = {{"gpt2_qkv_256x768x2304", {256, 768, 2304}},
                                                                  {"gpt2_fc_256x768x3072", {256, 768, 3072}},
                                                                  {"gpt2_proj_256x3072x768", {256, 3072, 768}},
                                                                  {"gpt2_lm_head_256x768x50304", {256, 768, 50304}}};
  for (const auto& [name, shape] : gpt2_step_layers) {
    for (const DType dtype : {DType::F32, DType::F16, DType::BF16}) {
      add("matmul_forward", dtype, name, matmul_forward, shape);
      add("matmul_backward", dtype, name, matmul_backward, shape);
    }
    add("openblas_sgemm_forward", DType::F32, name, openblas_sgemm_forward, shape);
    add("openblas_sgemm_backward", DType::F32, name, openblas_sgemm_backward, shape);
  }
  add("attention_forward", DType::F32, "small_64x10_c128_h4", attention_forward, small_attention);
  add("attention_forward", DType::F32, "gpt2_1x256_c768_h12", attention_forward, gpt2_attention);
  add("attention_backward", DType::F32, "small_64x10_c128_h4", attention_backward, small_attention);
  add("attention_backward", DType::F32, "gpt2_1x256_c768_h12", attention_backward, gpt2_attention);
  add("layernorm_forward", DType::F32, "small_640x128", layernorm_forward, small_rows);
  add("layernorm_forward", DType::F32, "gpt2_1024x768", layernorm_forward, gpt2_rows);
  add("layernorm_backward", DType::F32, "small_640x128", layernorm_backward, small_rows);
  add("layernorm_backward", DType::F32, "gpt2_1024x768", layernorm_backward, gpt2_rows);
  // GELU on the MLP's hidden layer (4·C wide): the small model's 640 tokens, GPT-2's 256 of the step benchmark.
  // fp16 and bf16 tabulate the function (65,536 inputs) at these sizes; fp32 evaluates every element.
  const RowsShape small_hidden{640, 512}, gpt2_hidden{256, 3072};
  for (const DType dtype : {DType::F32, DType::F16, DType::BF16}) {
    add("gelu_forward", dtype, "small_640x512", gelu_forward, small_hidden);
    add("gelu_forward", dtype, "gpt2_256x3072", gelu_forward, gpt2_hidden);
    add("gelu_backward", dtype, "small_640x512", gelu_backward, small_hidden);
    add("gelu_backward", dtype, "gpt2_256x3072", gelu_backward, gpt2_hidden);
  }
  // fp32 is stages 01 and 03-05's optimizer state; fp16 is stage 02's, which keeps everything in half precision.
  // (fp16 is emulated element by element on the CPU: the small size shows its rate without a second-long run.)
  for (const DType dtype : {DType::F32, DType::F16}) {
    add("adamw", dtype, "small_" + std::to_string(small_parameters), adamw, small_parameters);
  }
  add("adamw", DType::F32, "16m", adamw, large_parameters);
  // The master -> working copy back of stages 03-06 and 10: a convert after the update, or rounded in its pass.
  for (const DType working : {DType::F16, DType::BF16}) {
    add("adamw_then_convert", working, "16m", adamw_then_convert, large_parameters);
    add("adamw_rounding_into_working", working, "16m", adamw_rounding_into_working, large_parameters);
  }
  return true;
}

[[maybe_unused]] const bool registered = register_kernel_benchmarks();

}  // namespace
}  // namespace ladder::bench
