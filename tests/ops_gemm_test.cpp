// The CPU GEMM (common/ops/cpu/gemm.hpp) and the matmul built on it, against a reference computed here in double
// from the same stored inputs, on odd shapes that cut into several blocks (and a last, shorter one) both by
// columns and by rows, with every pair of transposes, padded leading dimensions, and every way an output starts.
//
// Tolerance, per element: fp32 accumulation of the start and K products (K + 1 terms) can be off by
// γ_{K+1}·(|start| + Σ|a·b|), γ_n = n·u/(1-n·u) with u = 2^-24 (Higham's bound for any summation order, products'
// roundings included); fp16/bf16 outputs are then rounded once, which adds at
// most half a unit in the last place of the result. Twice that half unit (a second rounding, or a sum rounded in
// 16 bits along the way) or a misplaced block fails by far more.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include "common/dtype.hpp"
#include "common/dtype_convert.hpp"
#include "common/ops/cpu/gemm.hpp"
#include "common/ops/ops.hpp"
#include "common/random.hpp"

namespace ladder {
namespace {

using ops::cpu::GemmArguments;
using ops::cpu::GemmStart;

double as_double(float value) { return value; }
double as_double(Half value) { return static_cast<float>(value); }
double as_double(BFloat16 value) { return static_cast<float>(value); }

// Half a unit in the last place of `value` in storage type S (0 for float: the bound's γ_K part covers it).
template <class S>
double half_ulp(double value) {
  if constexpr (std::is_same_v<S, float>) {
    return 0;
  } else {
    const int significant_bits = std::is_same_v<S, Half> ? 11 : 8;
    const int smallest_exponent = std::is_same_v<S, Half> ? -24 : -133;  // spacing of the subnormals
    int exponent = 0;
    std::frexp(value, &exponent);
    return std::ldexp(1.0, std::max(exponent - significant_bits, smallest_exponent)) / 2;
  }
}

template <class S>
std::vector<S> random_matrix(std::int64_t count, Random& random) {
  std::vector<S> values(static_cast<std::size_t>(count));
  for (S& value : values) value = S(static_cast<float>(random.normal()));
  return values;
}

struct Shape {
  std::int64_t M, N, K;
};

// Shapes: several column blocks with a short last one; several row blocks; one row; one column; K = 1; K = 0.
const Shape kShapes[] = {{37, 611, 45}, {613, 29, 70}, {1, 300, 5}, {130, 1, 300}, {64, 64, 1}, {5, 7, 0}};

template <class S>
void check_gemm(const Shape& shape, bool transpose_a, bool transpose_b, GemmStart start) {
  const auto [M, N, K] = shape;
  Random random(static_cast<std::uint64_t>(M * 1000003 + N * 1009 + K * 7 + transpose_a * 2 + transpose_b));
  // Stored shapes, with three elements of padding after every row.
  const std::int64_t a_rows = transpose_a ? K : M, a_cols = transpose_a ? M : K;
  const std::int64_t b_rows = transpose_b ? N : K, b_cols = transpose_b ? K : N;
  const std::int64_t lda = a_cols + 3, ldb = b_cols + 3, ldc = N + 3;
  const auto a = random_matrix<S>(a_rows * lda, random);
  const auto b = random_matrix<S>(b_rows * ldb, random);
  const auto bias = random_matrix<S>(N, random);
  auto out = random_matrix<S>(M * ldc, random);
  const auto out_before = out;

  GemmArguments<S> g;
  g.transpose_a = transpose_a, g.transpose_b = transpose_b;
  g.M = M, g.N = N, g.K = K;
  g.a = a.data(), g.lda = lda, g.b = b.data(), g.ldb = ldb, g.out = out.data(), g.ldc = ldc;
  g.start = start, g.bias = bias.data();
  ops::cpu::gemm(g);

  const double u = std::ldexp(1.0, -24);
  const double gamma = static_cast<double>(K + 1) * u / (1 - static_cast<double>(K + 1) * u);
  int failures = 0;
  for (std::int64_t m = 0; m < M; ++m) {
    for (std::int64_t n = 0; n < ldc; ++n) {
      const std::size_t at = static_cast<std::size_t>(m * ldc + n);
      if (n >= N) {  // padding: never written
        ASSERT_EQ(as_double(out[at]), as_double(out_before[at])) << "padding at row " << m << ", column " << n;
        continue;
      }
      double expected = start == GemmStart::Accumulate ? as_double(out_before[at])
                        : start == GemmStart::Bias     ? as_double(bias[static_cast<std::size_t>(n)])
                                                       : 0.0;
      double magnitude = std::fabs(expected);
      for (std::int64_t k = 0; k < K; ++k) {
        const double a_mk = as_double(a[static_cast<std::size_t>(transpose_a ? k * lda + m : m * lda + k)]);
        const double b_kn = as_double(b[static_cast<std::size_t>(transpose_b ? n * ldb + k : k * ldb + n)]);
        expected += a_mk * b_kn;
        magnitude += std::fabs(a_mk * b_kn);
      }
      const double tolerance = gamma * magnitude + half_ulp<S>(expected) + 1e-300;
      const double actual = as_double(out[at]);
      if (!(std::fabs(actual - expected) <= tolerance) && ++failures <= 3) {
        ADD_FAILURE() << "out[" << m << "," << n << "] = " << actual << ", expected " << expected << " ± "
                      << tolerance;
      }
    }
  }
  EXPECT_EQ(failures, 0);
}

template <class S>
void check_every_shape_transpose_and_start() {
  for (const Shape& shape : kShapes) {
    for (const bool transpose_a : {false, true}) {
      for (const bool transpose_b : {false, true}) {
        for (const GemmStart start : {GemmStart::Zero, GemmStart::Accumulate, GemmStart::Bias}) {
          SCOPED_TRACE(::testing::Message() << "M=" << shape.M << " N=" << shape.N << " K=" << shape.K
                                            << " transpose_a=" << transpose_a << " transpose_b=" << transpose_b
                                            << " start=" << static_cast<int>(start));
          check_gemm<S>(shape, transpose_a, transpose_b, start);
        }
      }
    }
  }
}

TEST(Gemm, Fp32MatchesTheDoubleReferenceOnOddShapesAndEveryTranspose) { check_every_shape_transpose_and_start<float>(); }
TEST(Gemm, Fp16IsTheFp32SumRoundedOnceOnOddShapesAndEveryTranspose) { check_every_shape_transpose_and_start<Half>(); }
TEST(Gemm, Bf16IsTheFp32SumRoundedOnceOnOddShapesAndEveryTranspose) {
  check_every_shape_transpose_and_start<BFloat16>();
}

TEST(Gemm, TheTestShapesCutIntoSeveralBlocksByColumnsAndByRows) {
  // Otherwise the tests above would not reach the block edges they are meant to check.
  const auto by_columns = ops::cpu::gemm_blocking(37, 611, 45);
  EXPECT_TRUE(by_columns.by_columns);
  EXPECT_GT(by_columns.count, 2);
  EXPECT_NE(611 % by_columns.block, 0) << "the last block should be shorter";
  const auto by_rows = ops::cpu::gemm_blocking(613, 29, 70);
  EXPECT_FALSE(by_rows.by_columns);
  EXPECT_GT(by_rows.count, 2);
  EXPECT_NE(613 % by_rows.block, 0);
}

// The portable conversions are the fallback on CPUs without F16C and AVX2: the GEMM must give the same bits
// through them as through the fast ones (the conversions are exact, and the same sgemm calls follow).
template <class S>
void expect_same_bits_through_both_conversion_paths() {
  if (!conversion_path_supported(ConversionPath::X86F16cAvx2)) GTEST_SKIP() << "this CPU has only the portable path";
  Random random(77);
  const std::int64_t M = 130, N = 611, K = 45;
  const auto a = random_matrix<S>(M * K, random), b = random_matrix<S>(N * K, random);
  std::vector<S> fast(static_cast<std::size_t>(M * N)), portable(fast.size());
  GemmArguments<S> g;
  g.transpose_b = true;
  g.M = M, g.N = N, g.K = K, g.a = a.data(), g.lda = K, g.b = b.data(), g.ldb = K, g.ldc = N;
  const ConversionPath before = conversion_path();
  use_conversion_path(ConversionPath::X86F16cAvx2);
  g.out = fast.data();
  ops::cpu::gemm(g);
  use_conversion_path(ConversionPath::Portable);
  g.out = portable.data();
  ops::cpu::gemm(g);
  use_conversion_path(before);
  for (std::size_t i = 0; i < fast.size(); ++i) ASSERT_EQ(fast[i].bits, portable[i].bits) << "element " << i;
}

TEST(Gemm, Fp16GivesTheSameBitsThroughThePortableConversions) { expect_same_bits_through_both_conversion_paths<Half>(); }
TEST(Gemm, Bf16GivesTheSameBitsThroughThePortableConversions) {
  expect_same_bits_through_both_conversion_paths<BFloat16>();
}

// matmul forward and backward through the Tensor interface, bias included, against double sums of the stored
// values: out = inp·weightᵀ + bias; dinp += dout·weight; dweight += doutᵀ·inp; dbias += Σ_rows dout.
template <class S>
void check_matmul_forward_and_backward(DType dtype) {
  Random random(2025);
  const std::int64_t N = 37, C = 45, OC = 611;
  auto inp = random_matrix<S>(N * C, random), weight = random_matrix<S>(OC * C, random);
  auto bias = random_matrix<S>(OC, random), dout = random_matrix<S>(N * OC, random);
  auto dinp = random_matrix<S>(N * C, random), dweight = random_matrix<S>(OC * C, random);
  auto dbias = random_matrix<S>(OC, random);
  const auto dinp_before = dinp, dweight_before = dweight, dbias_before = dbias;
  std::vector<S> out(static_cast<std::size_t>(N * OC));
  auto tensor = [dtype](std::vector<S>& values, std::initializer_list<std::int64_t> shape) {
    return Tensor(values.data(), dtype, shape);
  };
  ops::matmul_forward(tensor(out, {N, OC}), tensor(inp, {N, C}), tensor(weight, {OC, C}), tensor(bias, {OC}));
  ops::matmul_backward(tensor(dinp, {N, C}), tensor(dweight, {OC, C}), tensor(dbias, {OC}), tensor(dout, {N, OC}),
                       tensor(inp, {N, C}), tensor(weight, {OC, C}));
  const double u = std::ldexp(1.0, -24);
  // One element: start + Σ terms(k) over `length` terms, checked against the bound above.
  auto check = [&](const char* name, double actual, double start, std::int64_t length, auto term) {
    double expected = start, magnitude = std::fabs(start);
    for (std::int64_t k = 0; k < length; ++k) {
      expected += term(k);
      magnitude += std::fabs(term(k));
    }
    const double gamma = static_cast<double>(length + 1) * u / (1 - static_cast<double>(length + 1) * u);
    const double tolerance = gamma * magnitude + half_ulp<S>(expected) + 1e-300;
    return std::fabs(actual - expected) <= tolerance
               ? ::testing::AssertionSuccess()
               : ::testing::AssertionFailure() << name << " = " << actual << ", expected " << expected << " ± " << tolerance;
  };
  auto at = [](const std::vector<S>& values, std::int64_t index) { return as_double(values[static_cast<std::size_t>(index)]); };
  for (std::int64_t n = 0; n < N; ++n) {
    for (std::int64_t o = 0; o < OC; ++o) {
      ASSERT_TRUE(check("out", at(out, n * OC + o), at(bias, o), C, [&](std::int64_t c) { return at(inp, n * C + c) * at(weight, o * C + c); }));
    }
    for (std::int64_t c = 0; c < C; ++c) {
      ASSERT_TRUE(check("dinp", at(dinp, n * C + c), at(dinp_before, n * C + c), OC, [&](std::int64_t o) { return at(dout, n * OC + o) * at(weight, o * C + c); }));
    }
  }
  for (std::int64_t o = 0; o < OC; ++o) {
    for (std::int64_t c = 0; c < C; ++c) {
      ASSERT_TRUE(check("dweight", at(dweight, o * C + c), at(dweight_before, o * C + c), N, [&](std::int64_t n) { return at(dout, n * OC + o) * at(inp, n * C + c); }));
    }
    ASSERT_TRUE(check("dbias", at(dbias, o), at(dbias_before, o), N, [&](std::int64_t n) { return at(dout, n * OC + o); }));
  }
}

TEST(Matmul, Fp32ForwardAndBackwardMatchTheDoubleReference) { check_matmul_forward_and_backward<float>(DType::F32); }
TEST(Matmul, Fp16ForwardAndBackwardAreTheFp32SumsRoundedOnce) { check_matmul_forward_and_backward<Half>(DType::F16); }
TEST(Matmul, Bf16ForwardAndBackwardAreTheFp32SumsRoundedOnce) {
  check_matmul_forward_and_backward<BFloat16>(DType::BF16);
}

}  // namespace
}  // namespace ladder
