// The linear layer on the GPU, out = inp · weightᵀ + bias: every GEMM through cuBLASLt, the bias fused into the
// forward GEMM's epilogue, the bias gradient by a deterministic column-sum kernel.
//
// cuBLASLt is column-major and our tensors are row-major. A row-major (R,K) matrix is the same memory as a
// column-major (K,R) matrix with leading dimension K, i.e. its transpose, so each product below is written for
// the transposed result: (A·B)ᵀ = Bᵀ·Aᵀ.
#include <algorithm>
#include <atomic>
#include <compare>
#include <cstdint>
#include <map>
#include <mutex>
#include <type_traits>

#include "common/error.hpp"
#include "common/ops/cuda/cublaslt_handle.hpp"
#include "common/ops/cuda/cuda_check.hpp"
#include "common/ops/cuda/cuda_ops.hpp"
#include "common/ops/cuda/device_values.cuh"

namespace ladder::ops::cuda {

namespace {

std::atomic<bool> tf32_enabled{false};

template <class S>
constexpr cudaDataType_t cuda_data_type() {
  if constexpr (std::is_same_v<S, float>) return CUDA_R_32F;
  else if constexpr (std::is_same_v<S, Half>) return CUDA_R_16F;
  else return CUDA_R_16BF;
}

// fp16 and bf16 inputs still accumulate in fp32; only fp32 inputs may opt into TF32 tensor cores.
cublasComputeType_t compute_type_for(cudaDataType_t type) {
  if (type == CUDA_R_32F && tf32_enabled.load()) return CUBLAS_COMPUTE_32F_FAST_TF32;
  return CUBLAS_COMPUTE_32F;
}

// Largest power of two up to 16 that divides the address: model tensors are views at arbitrary element offsets,
// and cuBLASLt's heuristic assumes 256-byte alignment unless told otherwise.
std::uint32_t alignment_of(const void* pointer) {
  const auto address = reinterpret_cast<std::uintptr_t>(pointer);
  std::uint32_t alignment = 16;
  while (alignment > 1 && address % alignment != 0) alignment /= 2;
  return alignment;
}

// cuBLASLt's bias epilogue has been seen to fail on a bias that is not 16-byte aligned, and no heuristic preference
// describes the bias's alignment. An unaligned bias is therefore copied into the output first and added by the
// GEMM with beta = 1 instead.
bool bias_can_be_fused(const void* bias) { return alignment_of(bias) == 16; }

// Owns one cuBLASLt descriptor, so a failing check further on leaks nothing.
template <class Descriptor, cublasStatus_t (*Destroy)(Descriptor)>
class OwnedDescriptor {
 public:
  OwnedDescriptor() = default;
  ~OwnedDescriptor() {
    if (value_ != nullptr) (void)Destroy(value_);
  }
  OwnedDescriptor(const OwnedDescriptor&) = delete;
  OwnedDescriptor& operator=(const OwnedDescriptor&) = delete;
  Descriptor* receive() { return &value_; }
  Descriptor get() const { return value_; }

 private:
  Descriptor value_ = nullptr;
};
using MatmulDescriptor = OwnedDescriptor<cublasLtMatmulDesc_t, cublasLtMatmulDescDestroy>;
using LayoutDescriptor = OwnedDescriptor<cublasLtMatrixLayout_t, cublasLtMatrixLayoutDestroy>;
using PreferenceDescriptor = OwnedDescriptor<cublasLtMatmulPreference_t, cublasLtMatmulPreferenceDestroy>;

// Everything the heuristic's answer depends on; the pointers enter only through their alignment.
struct GemmKey {
  std::int64_t m, n, k;
  cudaDataType_t type;
  cublasComputeType_t compute;
  bool transpose_a, transpose_b, has_bias, accumulate;
  std::uint32_t align_a, align_b, align_d;
  auto operator<=>(const GemmKey&) const = default;
};

std::mutex algorithm_cache_mutex;
std::map<GemmKey, cublasLtMatmulAlgo_t> algorithm_cache;

template <class Value>
void set_matmul_attribute(cublasLtMatmulDesc_t descriptor, cublasLtMatmulDescAttributes_t attribute,
                          const Value& value, const char* what) {
  check_cublas(cublasLtMatmulDescSetAttribute(descriptor, attribute, &value, sizeof(value)), what);
}

void set_preference(cublasLtMatmulPreference_t preference, cublasLtMatmulPreferenceAttributes_t attribute,
                    std::uint32_t value, const char* what) {
  check_cublas(cublasLtMatmulPreferenceSetAttribute(preference, attribute, &value, sizeof(value)), what);
}

// The best algorithm for this GEMM, asking cuBLASLt's heuristic only the first time a key is seen.
cublasLtMatmulAlgo_t find_algorithm(const GemmKey& key, cublasLtMatmulDesc_t operation, cublasLtMatrixLayout_t a,
                                    cublasLtMatrixLayout_t b, cublasLtMatrixLayout_t d) {
  const std::lock_guard<std::mutex> lock(algorithm_cache_mutex);
  if (const auto found = algorithm_cache.find(key); found != algorithm_cache.end()) return found->second;

  PreferenceDescriptor preference;
  check_cublas(cublasLtMatmulPreferenceCreate(preference.receive()), "cublasLtMatmulPreferenceCreate");
  const std::uint64_t workspace_bytes = kCublasLtWorkspaceBytes;
  check_cublas(cublasLtMatmulPreferenceSetAttribute(preference.get(), CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES,
                                                    &workspace_bytes, sizeof(workspace_bytes)),
               "matmul workspace preference");
  set_preference(preference.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, key.align_a, "matmul A alignment");
  set_preference(preference.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, key.align_b, "matmul B alignment");
  set_preference(preference.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, key.align_d, "matmul C alignment");
  set_preference(preference.get(), CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, key.align_d, "matmul D alignment");

  cublasLtMatmulHeuristicResult_t result{};
  int returned = 0;
  const cublasStatus_t status =
      cublasLtMatmulAlgoGetHeuristic(cublaslt_handle(), operation, a, b, d, d, preference.get(), 1, &result, &returned);
  if (status != CUBLAS_STATUS_NOT_SUPPORTED) check_cublas(status, "cublasLtMatmulAlgoGetHeuristic");
  LADDER_CHECK(status == CUBLAS_STATUS_SUCCESS && returned > 0, "cuBLASLt has no algorithm for the matmul m=", key.m,
               " n=", key.n, " k=", key.k, " (data type ", static_cast<int>(key.type), ", transa ",
               key.transpose_a, " transb ", key.transpose_b, ", bias ", key.has_bias, ", alignments ", key.align_a, "/",
               key.align_b, "/", key.align_d, " bytes)");
  algorithm_cache.emplace(key, result.algo);
  return result.algo;
}

// Column-major D (m,n; ld m) = op(A) (m,k) · op(B) (k,n) + beta · D, plus bias (m) on every column when given.
// A is stored (k,m) when transposed, else (m,k); B is stored (n,k) when transposed, else (k,n). A bias must be
// 16-byte aligned (see bias_can_be_fused).
template <class S>
void gemm(bool transpose_a, bool transpose_b, std::int64_t m, std::int64_t n, std::int64_t k, const S* a,
          std::int64_t lda, const S* b, std::int64_t ldb, float beta, S* d, const S* bias) {
  const cudaDataType_t type = cuda_data_type<S>();
  const GemmKey key{.m = m,
                    .n = n,
                    .k = k,
                    .type = type,
                    .compute = compute_type_for(type),
                    .transpose_a = transpose_a,
                    .transpose_b = transpose_b,
                    .has_bias = bias != nullptr,
                    .accumulate = beta != 0.0f,
                    .align_a = alignment_of(a),
                    .align_b = alignment_of(b),
                    .align_d = alignment_of(d)};

  MatmulDescriptor operation;
  check_cublas(cublasLtMatmulDescCreate(operation.receive(), key.compute, CUDA_R_32F), "cublasLtMatmulDescCreate");
  const cublasOperation_t op_a = transpose_a ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_b = transpose_b ? CUBLAS_OP_T : CUBLAS_OP_N;
  set_matmul_attribute(operation.get(), CUBLASLT_MATMUL_DESC_TRANSA, op_a, "matmul transa");
  set_matmul_attribute(operation.get(), CUBLASLT_MATMUL_DESC_TRANSB, op_b, "matmul transb");
  if (bias != nullptr) {
    // The epilogue adds bias[row] to each row of D in fp32 before the single rounding on store.
    const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
    const void* bias_pointer = bias;
    const auto bias_type = static_cast<std::int32_t>(type);
    set_matmul_attribute(operation.get(), CUBLASLT_MATMUL_DESC_EPILOGUE, epilogue, "matmul bias epilogue");
    set_matmul_attribute(operation.get(), CUBLASLT_MATMUL_DESC_BIAS_POINTER, bias_pointer, "matmul bias pointer");
    set_matmul_attribute(operation.get(), CUBLASLT_MATMUL_DESC_BIAS_DATA_TYPE, bias_type, "matmul bias type");
  }

  LayoutDescriptor a_layout, b_layout, d_layout;
  const auto rows_a = static_cast<std::uint64_t>(transpose_a ? k : m);
  const auto cols_a = static_cast<std::uint64_t>(transpose_a ? m : k);
  const auto rows_b = static_cast<std::uint64_t>(transpose_b ? n : k);
  const auto cols_b = static_cast<std::uint64_t>(transpose_b ? k : n);
  check_cublas(cublasLtMatrixLayoutCreate(a_layout.receive(), type, rows_a, cols_a, lda), "matmul A layout");
  check_cublas(cublasLtMatrixLayoutCreate(b_layout.receive(), type, rows_b, cols_b, ldb), "matmul B layout");
  check_cublas(cublasLtMatrixLayoutCreate(d_layout.receive(), type, static_cast<std::uint64_t>(m),
                                          static_cast<std::uint64_t>(n), m),
               "matmul D layout");

  const cublasLtMatmulAlgo_t algorithm =
      find_algorithm(key, operation.get(), a_layout.get(), b_layout.get(), d_layout.get());
  Buffer& workspace = cublaslt_workspace();
  const float alpha = 1.0f;
  // C and D are the same matrix: beta = 1 accumulates into it, beta = 0 overwrites it without reading it.
  check_cublas(cublasLtMatmul(cublaslt_handle(), operation.get(), &alpha, a, a_layout.get(), b, b_layout.get(), &beta,
                              d, d_layout.get(), d, d_layout.get(), &algorithm, workspace.data(), workspace.bytes(),
                              /*stream=*/0),
               "cublasLtMatmul");
}

// out (N,OC) = bias on every row, or zero without a bias.
template <class S>
__global__ void fill_rows_with_bias_kernel(S* out, const S* bias, std::int64_t N, std::int64_t OC) {
  const std::int64_t total = N * OC;
  const std::int64_t stride = static_cast<std::int64_t>(gridDim.x) * blockDim.x;
  for (std::int64_t i = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < total; i += stride) {
    out[i] = bias != nullptr ? bias[i % OC] : store_value<S>(0.0f);
  }
}

// The bias gradient in two deterministic passes: each block sums a band of rows for 32 columns (one warp reads
// 32 neighbouring columns of a row, so reads coalesce) and writes an fp32 partial; then each column adds its
// partials in a fixed order and rounds once into dbias. No atomics, so every run gives the same bits.
constexpr int kColumnsPerBlock = 32;
constexpr int kRowLanes = 8;
constexpr std::int64_t kRowsPerBand = 256;
constexpr std::int64_t kMaxBands = 1024;

template <class S>
__global__ void column_band_sums_kernel(float* partials, const S* dout, std::int64_t N, std::int64_t OC,
                                        std::int64_t rows_per_band) {
  __shared__ float lane_sums[kRowLanes][kColumnsPerBlock];
  const std::int64_t column = static_cast<std::int64_t>(blockIdx.x) * kColumnsPerBlock + threadIdx.x;
  const std::int64_t first_row = static_cast<std::int64_t>(blockIdx.y) * rows_per_band;
  const std::int64_t end_row = first_row + rows_per_band < N ? first_row + rows_per_band : N;
  float sum = 0.0f;
  if (column < OC) {
    for (std::int64_t row = first_row + threadIdx.y; row < end_row; row += kRowLanes) {
      sum += load_value(dout[row * OC + column]);
    }
  }
  lane_sums[threadIdx.y][threadIdx.x] = sum;
  __syncthreads();
  if (threadIdx.y == 0 && column < OC) {
    float band_sum = 0.0f;
    for (int lane = 0; lane < kRowLanes; ++lane) band_sum += lane_sums[lane][threadIdx.x];
    partials[static_cast<std::int64_t>(blockIdx.y) * OC + column] = band_sum;
  }
}

template <class S>
__global__ void add_band_sums_kernel(S* dbias, const float* partials, std::int64_t bands, std::int64_t OC) {
  const std::int64_t column = static_cast<std::int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (column >= OC) return;
  float sum = 0.0f;
  for (std::int64_t band = 0; band < bands; ++band) sum += partials[band * OC + column];
  dbias[column] = store_value<S>(load_value(dbias[column]) + sum);
}

// dbias (OC) += column sums of dout (N,OC). The partials borrow the GEMM workspace: all work is on the default
// stream, so the GEMMs before and after never touch it at the same time.
template <class S>
void accumulate_column_sums(S* dbias, const S* dout, std::int64_t N, std::int64_t OC) {
  Buffer& workspace = cublaslt_workspace();
  const std::int64_t band_capacity = static_cast<std::int64_t>(workspace.bytes() / sizeof(float)) / OC;
  LADDER_CHECK(band_capacity >= 1, "matmul bias gradient: ", OC, " columns do not fit the ", workspace.bytes(),
               "-byte workspace");
  const std::int64_t wanted_bands = (N + kRowsPerBand - 1) / kRowsPerBand;
  const std::int64_t bands = std::min({wanted_bands, kMaxBands, band_capacity});
  const std::int64_t rows_per_band = (N + bands - 1) / bands;
  auto* partials = static_cast<float*>(workspace.data());

  const dim3 band_grid(blocks_for(OC, kColumnsPerBlock), static_cast<unsigned int>(bands));
  const dim3 band_block(kColumnsPerBlock, kRowLanes);
  column_band_sums_kernel<S><<<band_grid, band_block>>>(partials, dout, N, OC, rows_per_band);
  check_launch("column_band_sums_kernel");
  constexpr int threads = 256;
  add_band_sums_kernel<S><<<blocks_for(OC, threads), threads>>>(dbias, partials, bands, OC);
  check_launch("add_band_sums_kernel");
}

}  // namespace

void set_tf32(bool enabled) { tf32_enabled.store(enabled); }

template <class S>
void matmul_forward(S* out, const S* inp, const S* weight, const S* bias, std::int64_t N, std::int64_t C,
                    std::int64_t OC) {
  if (N == 0 || OC == 0) return;
  const bool fuse_bias = bias != nullptr && bias_can_be_fused(bias);
  // Without the fused epilogue, out starts as the bias on every row (or zero when the product is empty, since
  // cuBLASLt rejects k = 0) and the GEMM adds to it: either way each output is rounded once, as on the CPU.
  const bool prefill = C == 0 || (bias != nullptr && !fuse_bias);
  if (prefill) {
    constexpr int threads = 256;
    const unsigned int blocks = std::min(blocks_for(N * OC, threads), 65535u);
    fill_rows_with_bias_kernel<S><<<blocks, threads>>>(out, bias, N, OC);
    check_launch("fill_rows_with_bias_kernel");
  }
  if (C == 0) return;
  // outᵀ (OC,N) = weight (OC,C) · inpᵀ (C,N): weight's memory is a column-major (C,OC), used transposed.
  gemm<S>(/*transpose_a=*/true, /*transpose_b=*/false, OC, N, C, weight, C, inp, C, prefill ? 1.0f : 0.0f, out,
          fuse_bias ? bias : nullptr);
}

template <class S>
void matmul_backward(S* dinp, S* dweight, S* dbias, const S* dout, const S* inp, const S* weight, std::int64_t N,
                     std::int64_t C, std::int64_t OC) {
  // Each GEMM is skipped when its result is empty or its sum has no terms (adding zero changes nothing).
  if (N > 0 && C > 0 && OC > 0) {
    // dinpᵀ (C,N) += weightᵀ (C,OC) · doutᵀ (OC,N): both are their row-major memory read column-major.
    gemm<S>(false, false, C, N, OC, weight, C, dout, OC, 1.0f, dinp, nullptr);
    // dweightᵀ (C,OC) += inpᵀ (C,N) · dout (N,OC): dout's memory is a column-major (OC,N), used transposed.
    if (dweight != nullptr) gemm<S>(false, true, C, OC, N, inp, C, dout, OC, 1.0f, dweight, nullptr);
  }
  if (dbias != nullptr && N > 0 && OC > 0) accumulate_column_sums(dbias, dout, N, OC);
}

#define LADDER_INSTANTIATE_CUDA_MATMUL(S)                                                                      \
  template void matmul_forward<S>(S*, const S*, const S*, const S*, std::int64_t, std::int64_t, std::int64_t); \
  template void matmul_backward<S>(S*, S*, S*, const S*, const S*, const S*, std::int64_t, std::int64_t, std::int64_t);
LADDER_FOR_EACH_CUDA_STORAGE_TYPE(LADDER_INSTANTIATE_CUDA_MATMUL)

}  // namespace ladder::ops::cuda
