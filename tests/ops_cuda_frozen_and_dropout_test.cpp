// The GPU versions of stage 10's two op additions against the CPU: dropout (the same mask on both devices) and the
// backward of a frozen matmul or LayerNorm (empty weight gradients). Skips where no GPU is visible.
#include <gtest/gtest.h>

#include <string>

#include "common/memory.hpp"
#include "common/ops/ops.hpp"
#include "tests/cuda_test_support.hpp"

namespace ladder {
namespace {

using testing_support::expect_gpu_matches_cpu;
using testing_support::MirroredTensor;
using testing_support::Tolerance;

constexpr DType kStorageTypes[] = {DType::F32, DType::F16, DType::BF16};

class CudaFrozenAndDropout : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!cuda_device_available()) GTEST_SKIP() << "no CUDA GPU visible: the CUDA ops are compiled but cannot run here";
  }
  Random random_{20240612};
};

TEST_F(CudaFrozenAndDropout, DropoutDropsTheSameElementsAsTheCpu) {
  for (DType dtype : kStorageTypes) {
    const std::int64_t count = 100003;  // not a multiple of any block
    MirroredTensor inp(dtype, {count}), out(dtype, {count}), dout(dtype, {count}), dinp(dtype, {count});
    for (MirroredTensor* tensor : {&inp, &dout, &dinp}) tensor->fill_normal(random_);
    out.poison();
    ops::dropout_forward(out.cpu(), inp.cpu(), 0.3, 77);
    ops::dropout_forward(out.gpu(), inp.gpu(), 0.3, 77);
    // One multiplication, rounded once: the same bits, zeros in the same places.
    expect_gpu_matches_cpu(out, Tolerance{0.0, 0.0}, std::string("dropout out"));
    ops::dropout_backward(dinp.cpu(), dout.cpu(), 0.3, 77);
    ops::dropout_backward(dinp.gpu(), dout.gpu(), 0.3, 77);
    // A multiply-add, which the GPU may fuse into one rounding: within one storage ulp.
    expect_gpu_matches_cpu(dinp, Tolerance{0.0, 1.0}, std::string("dropout dinp"));
  }
}

TEST_F(CudaFrozenAndDropout, FrozenMatmulAndLayerNormBackwardComputeDinpAlone) {
  for (DType dtype : kStorageTypes) {
    const std::int64_t N = 37, C = 48, OC = 72;
    MirroredTensor inp(dtype, {N, C}), weight(dtype, {OC, C}), dout(dtype, {N, OC}), dinp(dtype, {N, C});
    for (MirroredTensor* tensor : {&inp, &weight, &dout, &dinp}) tensor->fill_normal(random_);
    ops::matmul_backward(dinp.cpu(), Tensor(), Tensor(), dout.cpu(), inp.cpu(), weight.cpu());
    ops::matmul_backward(dinp.gpu(), Tensor(), Tensor(), dout.gpu(), inp.gpu(), weight.gpu());
    expect_gpu_matches_cpu(dinp, Tolerance{1e-4}, "frozen matmul dinp");

    MirroredTensor norm_weight(dtype, {C}), norm_bias(dtype, {C}), out(dtype, {N, C}), mean(DType::F32, {N}),
        rstd(DType::F32, {N}), norm_dout(dtype, {N, C}), norm_dinp(dtype, {N, C});
    for (MirroredTensor* tensor : {&norm_weight, &norm_bias, &norm_dout, &norm_dinp}) tensor->fill_normal(random_);
    ops::layernorm_forward(out.cpu(), mean.cpu(), rstd.cpu(), inp.cpu(), norm_weight.cpu(), norm_bias.cpu());
    mean.upload();
    rstd.upload();
    ops::layernorm_backward(norm_dinp.cpu(), Tensor(), Tensor(), norm_dout.cpu(), inp.cpu(), norm_weight.cpu(),
                            mean.cpu(), rstd.cpu());
    ops::layernorm_backward(norm_dinp.gpu(), Tensor(), Tensor(), norm_dout.gpu(), inp.gpu(), norm_weight.gpu(),
                            mean.gpu(), rstd.gpu());
    expect_gpu_matches_cpu(norm_dinp, Tolerance{1e-4}, "frozen layernorm dinp");
  }
}

}  // namespace
}  // namespace ladder
