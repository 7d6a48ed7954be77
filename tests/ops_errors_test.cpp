// Every op refuses bad arguments with a LadderError that names the op and the offending argument, instead of
// reading out of bounds or silently computing something else.
#include <gtest/gtest.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "common/ops/ops.hpp"
#include "tests/test_support.hpp"

namespace ladder {
namespace {

using testing_support::expect_error_mentioning;

// Plenty of zeroed memory for views of any small shape; the errors fire before anything is read.
struct Storage {
  std::vector<double> values = std::vector<double>(4096, 0.0);
  std::vector<std::int32_t> ids = std::vector<std::int32_t>(256, 0);
  Tensor f32(std::initializer_list<std::int64_t> shape) { return Tensor(values.data(), DType::F32, shape); }
  Tensor f64(std::initializer_list<std::int64_t> shape) { return Tensor(values.data(), DType::F64, shape); }
  Tensor i32(std::initializer_list<std::int64_t> shape) { return Tensor(ids.data(), DType::I32, shape); }
};

TEST(OpErrors, MismatchedShapesNameTheOpAndTheArgument) {
  Storage s;
  expect_error_mentioning(
      [&] {
        ops::matmul_forward(s.f32({4, 3}), s.f32({4, 5}), s.f32({3, 6}), s.f32({3}));
      },
      {"matmul_forward", "inp", "[4, 5]"});
  expect_error_mentioning(
      [&] {
        ops::matmul_forward(s.f32({4, 2}), s.f32({4, 5}), s.f32({3, 5}), s.f32({3}));
      },
      {"matmul_forward", "out"});
  expect_error_mentioning(
      [&] {
        ops::matmul_forward(s.f32({4, 3}), s.f32({4, 5}), s.f32({3, 5}), s.f32({4}));
      },
      {"matmul_forward", "bias"});
  expect_error_mentioning(
      [&] {
        ops::matmul_backward(s.f32({4, 5}), s.f32({5, 3}), s.f32({3}), s.f32({4, 3}), s.f32({4, 5}), s.f32({3, 5}));
      },
      {"matmul_backward", "dweight"});
  expect_error_mentioning(
      [&] {
        ops::layernorm_forward(s.f32({2, 8}), s.f32({2}), s.f32({2}), s.f32({2, 8}), s.f32({7}), s.f32({8}));
      },
      {"layernorm_forward", "weight"});
  expect_error_mentioning(
      [&] {
        ops::layernorm_backward(s.f32({2, 8}), s.f32({8}), s.f32({8}), s.f32({3, 8}), s.f32({2, 8}), s.f32({8}),
                                s.f32({2}), s.f32({2}));
      },
      {"layernorm_backward", "dout"});
  expect_error_mentioning(
      [&] {
        ops::attention_forward(s.f32({1, 4, 8}), s.f32({1, 2, 4, 4}), s.f32({1, 4, 24}), 3);
      },
      {"attention_forward", "n_head"});
  expect_error_mentioning(
      [&] {
        ops::attention_forward(s.f32({1, 4, 8}), s.f32({1, 2, 4, 3}), s.f32({1, 4, 24}), 2);
      },
      {"attention_forward", "att"});
  expect_error_mentioning(
      [&] {
        ops::attention_backward(s.f32({1, 4, 24}), s.f32({1, 4, 8}), s.f32({1, 4, 24}), s.f32({1, 2, 4, 4}), 4 + 1);
      },
      {"attention_backward"});
  expect_error_mentioning([&] { ops::gelu_forward(s.f32({3, 4}), s.f32({4, 3})); }, {"gelu_forward", "out", "inp"});
  expect_error_mentioning([&] { ops::residual_backward(s.f32({6}), s.f32({5}), s.f32({6})); },
                          {"residual_backward", "db"});
  expect_error_mentioning(
      [&] {
        ops::embedding_forward(s.f32({2, 3, 4}), s.i32({2, 4}), s.f32({5, 4}), s.f32({8, 4}));
      },
      {"embedding_forward", "tokens"});
  expect_error_mentioning(
      [&] {
        ops::embedding_forward(s.f32({2, 9, 4}), s.i32({2, 9}), s.f32({5, 4}), s.f32({8, 4}));
      },
      {"embedding_forward", "positions"});
  expect_error_mentioning(
      [&] {
        ops::softmax_cross_entropy_forward(s.f32({3}), s.f32({3, 10}), s.i32({3}), 11);
      },
      {"softmax_cross_entropy_forward", "vocab_size"});
  expect_error_mentioning([&] { ops::convert(s.f32({5}), s.f64({4})); }, {"convert", "source"});
  expect_error_mentioning([&] { ops::accumulate(s.f32({5}), s.f32({6})); }, {"accumulate", "source"});
}

TEST(OpErrors, MismatchedDtypesNameTheOpAndTheArgument) {
  Storage s;
  expect_error_mentioning([&] { ops::residual_forward(s.f32({4}), s.f32({4}), s.f64({4})); },
                          {"residual_forward", "b", "F64"});
  expect_error_mentioning(
      [&] {
        ops::matmul_forward(s.f64({2, 3}), s.f64({2, 5}), s.f32({3, 5}), s.f64({3}));
      },
      {"matmul_forward", "weight", "F32"});
  // Statistics of fp32 storage are fp32, of fp64 storage fp64.
  expect_error_mentioning(
      [&] {
        ops::layernorm_forward(s.f32({2, 8}), s.f64({2}), s.f32({2}), s.f32({2, 8}), s.f32({8}), s.f32({8}));
      },
      {"layernorm_forward", "mean", "F64"});
  expect_error_mentioning(
      [&] {
        ops::softmax_cross_entropy_forward(s.f32({3}), s.f64({3, 10}), s.i32({3}), 10);
      },
      {"softmax_cross_entropy_forward", "losses"});
  expect_error_mentioning(
      [&] {
        ops::embedding_forward(s.f32({1, 2, 4}), s.f32({1, 2}), s.f32({5, 4}), s.f32({8, 4}));
      },
      {"embedding_forward", "tokens", "I32"});
  expect_error_mentioning([&] { ops::gelu_forward(s.i32({4}), s.i32({4})); }, {"gelu_forward", "I32"});
  expect_error_mentioning([&] { ops::scale(s.i32({4}), 2.0); }, {"scale", "I32"});
}

TEST(OpErrors, MixedDevicesAreRefusedNamingTheArguments) {
  Storage s;
  const Tensor on_gpu(s.values.data(), DType::F32, {4}, Device::CUDA);  // never dereferenced: the check comes first
  expect_error_mentioning([&] { ops::gelu_forward(on_gpu, s.f32({4})); },
                          {"gelu_forward", "inp is on cpu", "out is on cuda"});
  expect_error_mentioning([&] { ops::convert(s.f32({4}), on_gpu); },
                          {"convert", "source is on cuda", "destination is on cpu"});
  expect_error_mentioning([&] { ops::copy(s.f32({4}), Tensor(s.values.data(), DType::F16, {4})); },
                          {"copy", "source", "F16"});
}

TEST(OpErrors, OutOfRangeTokensAndTargetsAreRefused) {
  Storage s;
  s.ids = {0, 7, 1, 2};
  expect_error_mentioning(
      [&] {
        ops::embedding_forward(s.f32({1, 4, 2}), s.i32({1, 4}), s.f32({5, 2}), s.f32({4, 2}));
      },
      {"token 7", "position 1"});
  expect_error_mentioning(
      [&] {
        ops::embedding_backward(s.f32({5, 2}), s.f32({4, 2}), s.f32({1, 4, 2}), s.i32({1, 4}));
      },
      {"token 7"});
  expect_error_mentioning(
      [&] {
        ops::softmax_cross_entropy_forward(s.f32({4}), s.f32({4, 6}), s.i32({4}), 5);
      },
      {"target 7"});
  expect_error_mentioning(
      [&] {
        ops::softmax_cross_entropy_backward(s.f32({4, 6}), s.f32({4, 6}), s.i32({4}), 5, 1.0);
      },
      {"target 7"});
}

}  // namespace
}  // namespace ladder
