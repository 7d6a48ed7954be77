// The ops across storage types, and their argument errors.
// - F32 against F64 on the same (float-representable) inputs, through every op forward and backward: they agree
//   to 1e-5 of each result's largest magnitude (fp32 unit roundoff is 6e-8; sums here have at most ~100 terms).
// - Half and BFloat16 matmul and LayerNorm against the F32 result rounded to that type: within one unit in the
//   last place of the storage type. (They should agree exactly, being the same fp32 arithmetic rounded once;
//   one ulp leaves room for a BLAS that blocks differently for the two calls.)
// - Half and BFloat16 GELU, forward and backward, on every bit pattern: a large call (which tabulates the function
//   once per pattern) gives the same bits as the same elements in small calls (which evaluate each element).
// (Argument errors, mismatched shapes, dtypes or devices, are tested in ops_errors_test.cpp.)
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "common/memory.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"

namespace ladder {
namespace {

std::int64_t element_count(std::initializer_list<std::int64_t> shape) {
  std::int64_t count = 1;
  for (std::int64_t extent : shape) count *= extent;
  return count;
}

// An owned tensor of any dtype, read and written as double.
class HostTensor {
 public:
  HostTensor(DType dtype, std::initializer_list<std::int64_t> shape)
      : buffer_(static_cast<std::size_t>(element_count(shape)) * dtype_size(dtype), MemoryCategory::Activations),
        tensor_(buffer_.data(), dtype, shape) {}
  operator Tensor() const { return tensor_; }  // NOLINT: passes straight to the ops
  std::int64_t numel() const { return tensor_.numel(); }
  double get(std::int64_t i) const {
    switch (tensor_.dtype()) {
      case DType::F32: return tensor_.as<float>()[i];
      case DType::F64: return tensor_.as<double>()[i];
      case DType::F16: return static_cast<float>(tensor_.as<Half>()[i]);
      case DType::BF16: return static_cast<float>(tensor_.as<BFloat16>()[i]);
      case DType::I32: return tensor_.as<std::int32_t>()[i];
    }
    return 0;
  }
  // Rounds into the dtype (through float for the 16-bit types: test values are floats already).
  void set(std::int64_t i, double value) {
    switch (tensor_.dtype()) {
      case DType::F32: tensor_.as<float>()[i] = static_cast<float>(value); break;
      case DType::F64: tensor_.as<double>()[i] = value; break;
      case DType::F16: tensor_.as<Half>()[i] = Half(static_cast<float>(value)); break;
      case DType::BF16: tensor_.as<BFloat16>()[i] = BFloat16(static_cast<float>(value)); break;
      case DType::I32: tensor_.as<std::int32_t>()[i] = static_cast<std::int32_t>(value); break;
    }
  }
  std::vector<double> values() const {
    std::vector<double> all(static_cast<std::size_t>(numel()));
    for (std::int64_t i = 0; i < numel(); ++i) all[i] = get(i);
    return all;
  }

 private:
  Buffer buffer_;
  Tensor tensor_;
};

// Normal values rounded to float first, so that every dtype at least as wide as float sees the same inputs.
void fill(HostTensor& tensor, Random& random, double scale = 1.0) {
  for (std::int64_t i = 0; i < tensor.numel(); ++i) tensor.set(i, static_cast<float>(scale * random.normal()));
}

using Results = std::map<std::string, std::vector<double>>;

// A miniature model step in `dtype`: every op once, forward then backward, then an optimizer update.
Results run_every_op(DType dtype) {
  Random random(401);
  const DType statistics = dtype == DType::F64 ? DType::F64 : DType::F32;
  constexpr std::int64_t B = 2, T = 5, C = 8, heads = 2, V = 10, Vp = 12, N = B * T;
  Results results;
  HostTensor wte(dtype, {Vp, C}), wpe(dtype, {T, C}), ln_weight(dtype, {C}), ln_bias(dtype, {C});
  HostTensor qkv_weight(dtype, {3 * C, C}), qkv_bias(dtype, {3 * C});
  for (HostTensor* parameter : {&wte, &wpe, &ln_weight, &ln_bias, &qkv_weight, &qkv_bias})
    fill(*parameter, random, 0.5);
  HostTensor tokens(DType::I32, {B, T}), targets(DType::I32, {N});
  for (std::int64_t i = 0; i < N; ++i) {
    tokens.set(i, static_cast<double>(random.below(V)));
    targets.set(i, i == 3 ? -1.0 : static_cast<double>(random.below(V)));
  }
  const Tensor no_bias(nullptr, dtype, {0});

  HostTensor embedded(dtype, {B, T, C}), ln(dtype, {B, T, C}), mean(statistics, {B, T}), rstd(statistics, {B, T});
  HostTensor qkv(dtype, {B, T, 3 * C}), attended(dtype, {B, T, C}), att(dtype, {B, heads, T, T});
  HostTensor activated(dtype, {B, T, C}), residual(dtype, {B, T, C}), logits(dtype, {N, Vp}), losses(statistics, {N});
  ops::embedding_forward(embedded, tokens, wte, wpe);
  ops::layernorm_forward(ln, mean, rstd, embedded, ln_weight, ln_bias);
  ops::matmul_forward(qkv, ln, qkv_weight, qkv_bias);
  ops::attention_forward(attended, att, qkv, heads);
  ops::gelu_forward(activated, attended);
  ops::residual_forward(residual, embedded, activated);
  ops::matmul_forward(logits, residual, wte, no_bias);  // the tied head: logits = residual · wteᵀ
  ops::softmax_cross_entropy_forward(losses, logits, targets, V);
  for (const auto& [name, tensor] : {std::pair<const char*, const HostTensor*>{"embedded", &embedded},
                                     {"ln", &ln},
                                     {"mean", &mean},
                                     {"rstd", &rstd},
                                     {"qkv", &qkv},
                                     {"attended", &attended},
                                     {"att", &att},
                                     {"activated", &activated},
                                     {"logits", &logits},
                                     {"losses", &losses}}) {
    results[name] = tensor->values();
  }

  HostTensor dlogits(dtype, {N, Vp}), dresidual(dtype, {B, T, C}), dwte(dtype, {Vp, C}), dwpe(dtype, {T, C});
  HostTensor dembedded(dtype, {B, T, C}), dactivated(dtype, {B, T, C}), dattended(dtype, {B, T, C});
  HostTensor dqkv(dtype, {B, T, 3 * C}), dln(dtype, {B, T, C}), dqkv_weight(dtype, {3 * C, C});
  HostTensor dqkv_bias(dtype, {3 * C}), dln_weight(dtype, {C}), dln_bias(dtype, {C});
  ops::softmax_cross_entropy_backward(dlogits, logits, targets, V, 1.0 / N);
  ops::matmul_backward(dresidual, dwte, no_bias, dlogits, residual, wte);
  ops::residual_backward(dembedded, dactivated, dresidual);
  ops::gelu_backward(dattended, attended, dactivated);
  ops::attention_backward(dqkv, dattended, qkv, att, heads);
  ops::matmul_backward(dln, dqkv_weight, dqkv_bias, dqkv, ln, qkv_weight);
  ops::layernorm_backward(dembedded, dln_weight, dln_bias, dln, embedded, ln_weight, mean, rstd);
  ops::embedding_backward(dwte, dwpe, dembedded, tokens);
  for (const auto& [name, tensor] : {std::pair<const char*, const HostTensor*>{"dlogits", &dlogits},
                                     {"dresidual", &dresidual},
                                     {"dattended", &dattended},
                                     {"dqkv", &dqkv},
                                     {"dqkv_weight", &dqkv_weight},
                                     {"dqkv_bias", &dqkv_bias},
                                     {"dln", &dln},
                                     {"dln_weight", &dln_weight},
                                     {"dln_bias", &dln_bias},
                                     {"dembedded", &dembedded},
                                     {"dwte", &dwte},
                                     {"dwpe", &dwpe}}) {
    results[name] = tensor->values();
  }

  results["sum_of_squares"] = {ops::sum_of_squares(dwte)};
  ops::scale(dwte, 0.5);
  HostTensor first_moment(dtype, {Vp, C}), second_moment(dtype, {Vp, C});
  ops::AdamWStep hyper;
  hyper.weight_decay = 0.1;
  ops::adamw_update(wte, dwte, first_moment, second_moment, hyper);
  results["updated wte"] = wte.values();
  results["second moment"] = second_moment.values();
  return results;
}

double max_magnitude(const std::vector<double>& values) {
  double largest = 0;
  for (double value : values) largest = std::max(largest, std::fabs(value));
  return largest;
}

TEST(Precision, F32AgreesWithF64ThroughEveryOp) {
  const Results single = run_every_op(DType::F32);
  const Results reference = run_every_op(DType::F64);
  ASSERT_EQ(single.size(), reference.size());
  for (const auto& [name, expected] : reference) {
    const std::vector<double>& actual = single.at(name);
    ASSERT_EQ(actual.size(), expected.size()) << name;
    ASSERT_GT(max_magnitude(expected), 0.0) << name << " is all zero: the comparison would prove nothing";
    const double tolerance = 1e-5 * max_magnitude(expected);
    int failures = 0;
    for (std::size_t i = 0; i < expected.size(); ++i) {
      if (std::fabs(actual[i] - expected[i]) > tolerance && ++failures <= 3) {
        ADD_FAILURE() << name << "[" << i << "]: F32 " << actual[i] << ", F64 " << expected[i];
      }
    }
  }
}

// The spacing of the storage type's values at `value` (fp16: 11 significant bits, bf16: 8).
double unit_in_last_place(double value, DType dtype) {
  const int significant_bits = dtype == DType::F16 ? 11 : 8;
  const int smallest_exponent = dtype == DType::F16 ? -24 : -133;
  if (value == 0) return std::ldexp(1.0, smallest_exponent);
  int exponent;
  std::frexp(std::fabs(value), &exponent);
  return std::max(std::ldexp(1.0, exponent - significant_bits), std::ldexp(1.0, smallest_exponent));
}

void expect_rounded_f32(const HostTensor& reduced, const HostTensor& single, const std::string& name) {
  HostTensor rounded(static_cast<Tensor>(reduced).dtype(), {single.numel()});
  for (std::int64_t i = 0; i < single.numel(); ++i) {
    rounded.set(i, single.get(i));
    ASSERT_LE(std::fabs(reduced.get(i) - rounded.get(i)),
              unit_in_last_place(rounded.get(i), static_cast<Tensor>(reduced).dtype()))
        << name << "[" << i << "]: " << reduced.get(i) << " vs F32 rounded " << rounded.get(i);
  }
}

void check_reduced_precision(DType dtype) {
  Random random(402);
  constexpr std::int64_t N = 6, C = 16, OC = 12;
  HostTensor inp(dtype, {N, C}), weight(dtype, {OC, C}), bias(dtype, {OC}), dout(dtype, {N, OC});
  HostTensor dinp(dtype, {N, C}), dweight(dtype, {OC, C}), dbias(dtype, {OC}), ln_weight(dtype, {C});
  HostTensor ln_bias(dtype, {C});
  for (HostTensor* tensor : {&inp, &weight, &bias, &dout, &dinp, &dweight, &dbias, &ln_weight, &ln_bias}) {
    fill(*tensor, random);
  }
  // The same values, exactly, in F32.
  auto widened = [](const HostTensor& source, std::initializer_list<std::int64_t> shape) {
    auto copy = std::make_unique<HostTensor>(DType::F32, shape);
    for (std::int64_t i = 0; i < source.numel(); ++i) copy->set(i, source.get(i));
    return copy;
  };
  auto inp32 = widened(inp, {N, C}), weight32 = widened(weight, {OC, C}), bias32 = widened(bias, {OC});
  auto dout32 = widened(dout, {N, OC}), dinp32 = widened(dinp, {N, C}), dweight32 = widened(dweight, {OC, C});
  auto dbias32 = widened(dbias, {OC}), ln_weight32 = widened(ln_weight, {C}), ln_bias32 = widened(ln_bias, {C});

  HostTensor out(dtype, {N, OC}), out32(DType::F32, {N, OC});
  ops::matmul_forward(out, inp, weight, bias);
  ops::matmul_forward(out32, *inp32, *weight32, *bias32);
  expect_rounded_f32(out, out32, "matmul out");
  // Backward accumulates into reduced-precision gradients: old value + product, rounded once.
  ops::matmul_backward(dinp, dweight, dbias, dout, inp, weight);
  ops::matmul_backward(*dinp32, *dweight32, *dbias32, *dout32, *inp32, *weight32);
  expect_rounded_f32(dinp, *dinp32, "matmul dinp");
  expect_rounded_f32(dweight, *dweight32, "matmul dweight");
  expect_rounded_f32(dbias, *dbias32, "matmul dbias");

  // LayerNorm, with statistics in F32 for both.
  HostTensor ln(dtype, {N, C}), ln32(DType::F32, {N, C}), mean(DType::F32, {N}), rstd(DType::F32, {N});
  HostTensor mean32(DType::F32, {N}), rstd32(DType::F32, {N});
  ops::layernorm_forward(ln, mean, rstd, inp, ln_weight, ln_bias);
  ops::layernorm_forward(ln32, mean32, rstd32, *inp32, *ln_weight32, *ln_bias32);
  expect_rounded_f32(ln, ln32, "layernorm out");
  for (std::int64_t n = 0; n < N; ++n) {
    EXPECT_NEAR(mean.get(n), mean32.get(n), 1e-6 * (1 + std::fabs(mean32.get(n))));
    EXPECT_NEAR(rstd.get(n), rstd32.get(n), 1e-6 * std::fabs(rstd32.get(n)));
  }
}

TEST(Precision, HalfMatmulAndLayerNormAreF32RoundedOnce) { check_reduced_precision(DType::F16); }
TEST(Precision, BFloat16MatmulAndLayerNormAreF32RoundedOnce) { check_reduced_precision(DType::BF16); }

// Bytes of CPU workspace the accountant saw above what was held when `run` began.
std::int64_t workspace_peak_during(const std::function<void()>& run) {
  MemoryAccountant& accountant = memory_accountant();
  const std::int64_t before = accountant.usage(Device::CPU, MemoryCategory::Workspace).current;
  accountant.reset_peaks();
  run();
  return accountant.usage(Device::CPU, MemoryCategory::Workspace).peak - before;
}

// GELU of a 16-bit type on all 65,536 patterns, each five times in shuffled order (enough elements for the op to
// tabulate), against the same elements in calls of 4,096 (few enough that it evaluates each one).
template <class S>
void check_tabulated_gelu(DType dtype) {
  constexpr std::int64_t kPatterns = 1 << 16, kCopies = 5, kCount = kPatterns * kCopies, kPiece = 4096;
  Random random(dtype == DType::F16 ? 811 : 812);
  std::vector<S> inp(kCount), dout(kCount), dinp_start(kCount);
  for (std::int64_t i = 0; i < kCount; ++i) inp[i].bits = static_cast<std::uint16_t>(i % kPatterns);
  for (std::int64_t i = kCount - 1; i > 0; --i) std::swap(inp[i], inp[random.below(static_cast<std::uint64_t>(i) + 1)]);
  for (std::int64_t i = 0; i < kCount; ++i) {
    dout[i] = S(static_cast<float>(random.normal()));
    dinp_start[i] = S(static_cast<float>(random.normal()));
  }
  auto view = [&](std::vector<S>& values, std::int64_t start, std::int64_t count) {
    return Tensor(values.data() + start, dtype, {count});
  };
  std::vector<S> out_whole(kCount), out_pieces(kCount), dinp_whole = dinp_start, dinp_pieces = dinp_start;

  // The whole call tabulates: its workspace is one table, of stored outputs forward and fp32 gradients backward.
  EXPECT_EQ(workspace_peak_during([&] { ops::gelu_forward(view(out_whole, 0, kCount), view(inp, 0, kCount)); }),
            kPatterns * static_cast<std::int64_t>(sizeof(S)));
  EXPECT_EQ(workspace_peak_during([&] {
              ops::gelu_backward(view(dinp_whole, 0, kCount), view(inp, 0, kCount), view(dout, 0, kCount));
            }),
            kPatterns * static_cast<std::int64_t>(sizeof(float)));
  // The pieces evaluate every element, in arrays on the stack: no workspace at all.
  EXPECT_EQ(workspace_peak_during([&] {
              for (std::int64_t start = 0; start < kCount; start += kPiece) {
                ops::gelu_forward(view(out_pieces, start, kPiece), view(inp, start, kPiece));
                ops::gelu_backward(view(dinp_pieces, start, kPiece), view(inp, start, kPiece), view(dout, start, kPiece));
              }
            }),
            0);

  std::int64_t forward_mismatches = 0, backward_mismatches = 0;
  for (std::int64_t i = 0; i < kCount; ++i) {
    if (out_whole[i].bits != out_pieces[i].bits && ++forward_mismatches <= 5) {
      ADD_FAILURE() << dtype_name(dtype) << " gelu of bits 0x" << std::hex << inp[i].bits << ": tabulated 0x"
                    << out_whole[i].bits << ", evaluated 0x" << out_pieces[i].bits;
    }
    if (dinp_whole[i].bits != dinp_pieces[i].bits && ++backward_mismatches <= 5) {
      ADD_FAILURE() << dtype_name(dtype) << " gelu gradient at bits 0x" << std::hex << inp[i].bits
                    << ": tabulated 0x" << dinp_whole[i].bits << ", evaluated 0x" << dinp_pieces[i].bits;
    }
  }
  EXPECT_EQ(forward_mismatches, 0);
  EXPECT_EQ(backward_mismatches, 0);
  // Not a vacuous comparison: the backward pass changed the gradients it accumulated into.
  EXPECT_NE(std::memcmp(dinp_whole.data(), dinp_start.data(), kCount * sizeof(S)), 0);
}

TEST(Precision, HalfGeluTabulatedIsBitForBitEvaluated) { check_tabulated_gelu<Half>(DType::F16); }
TEST(Precision, BFloat16GeluTabulatedIsBitForBitEvaluated) { check_tabulated_gelu<BFloat16>(DType::BF16); }

}  // namespace
}  // namespace ladder
