#include "common/comm/nccl/nccl_communicator.hpp"

#include <cstdio>

#include "common/comm/mpi/mpi_communicator.hpp"
#include "common/comm/nccl/nccl_startup.hpp"
#include "common/error.hpp"
#include "common/ops/ops.hpp"

// ncclAvg arrived in NCCL 2.10 and ncclGetLastError in 2.13.
static_assert(NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0), "the NCCL backend needs NCCL 2.13 or newer");

namespace ladder {

using namespace nccl_startup;

namespace {

// Destructors cannot throw: their failures go to stderr.
void report_cuda(cudaError_t status, const char* call) {
  if (status != cudaSuccess) std::fprintf(stderr, "ladder: %s failed: %s\n", call, cudaGetErrorString(status));
}

void report_nccl(ncclResult_t status, const char* call) {
  if (status != ncclSuccess) std::fprintf(stderr, "ladder: %s failed: %s\n", call, ncclGetErrorString(status));
}

ncclDataType_t nccl_type_of(DType dtype) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::F16: return ncclFloat16;
    case DType::BF16: return ncclBfloat16;
    case DType::I32: return ncclInt32;
  }
  throw LadderError("unknown dtype in an NCCL collective");
}

ncclRedOp_t nccl_operation_of(Reduction reduction, DType dtype, const char* collective) {
  // The MPI backend refuses this too: a mean of integers would be silently truncated.
  LADDER_CHECK(!(reduction == Reduction::Average && dtype == DType::I32), collective, ": cannot average I32");
  return reduction == Reduction::Sum ? ncclSum : ncclAvg;
}

void require_gpu(Tensor tensor, const char* collective) {
  LADDER_CHECK(tensor.device() == Device::CUDA, "nccl ", collective, ": the tensor of ", tensor.numel(), " ",
               dtype_name(tensor.dtype()), " elements is in CPU memory, but NCCL moves GPU memory only (allocate it "
               "with Device::CUDA, or ", kUseMpiInstead, ")");
}

// The end of one collective on the communication stream, as an event.
class NcclPending : public PendingCollective {
 public:
  NcclPending(cudaEvent_t done, cudaStream_t compute_stream, ncclComm_t comm)
      : done_(done), compute_stream_(compute_stream), comm_(comm) {}
  ~NcclPending() override {
    // Even when nobody waited, later kernels on the compute stream must not touch the buffers before NCCL has.
    if (!waited_) report_cuda(cudaStreamWaitEvent(compute_stream_, done_, 0), "cudaStreamWaitEvent");
    report_cuda(cudaEventDestroy(done_), "cudaEventDestroy");
  }
  NcclPending(const NcclPending&) = delete;
  NcclPending& operator=(const NcclPending&) = delete;

  void wait() override {
    if (waited_) return;
    waited_ = true;
    check_cuda(cudaStreamWaitEvent(compute_stream_, done_, 0), "cudaStreamWaitEvent (compute waits for NCCL)");
    check_cuda(cudaEventSynchronize(done_), "cudaEventSynchronize (host waits for NCCL)");
    // A collective that failed inside NCCL (a peer gone, a network error) reports it here, not in its launch.
    ncclResult_t asynchronous = ncclSuccess;
    check_nccl(ncclCommGetAsyncError(comm_, &asynchronous), "ncclCommGetAsyncError", comm_);
    check_nccl(asynchronous, "an NCCL collective", comm_);
  }

 private:
  cudaEvent_t done_;
  cudaStream_t compute_stream_;
  ncclComm_t comm_;
  bool waited_ = false;
};

}  // namespace

NcclCommunicator::NcclCommunicator() {
  try {
    // Everything a rank can find wrong by itself, before any rank starts NCCL's collective initialisation.
    std::string problem;
    device_ = pick_gpu(rank(), problem);
    if (problem.empty()) {
      try {
        int version = 0;
        check_nccl(ncclGetVersion(&version), "ncclGetVersion", nullptr);
        LADDER_CHECK(version >= kMinimumNcclVersion, "libnccl is version ", version, ", but the NCCL backend needs ",
                     kMinimumNcclVersion, " or newer");
        check_cuda(cudaSetDevice(device_), "cudaSetDevice");
        check_cuda(cudaStreamCreateWithFlags(&communication_stream_, cudaStreamNonBlocking),
                   "cudaStreamCreateWithFlags");
        check_cuda(cudaEventCreateWithFlags(&compute_ready_, cudaEventDisableTiming), "cudaEventCreateWithFlags");
      } catch (const LadderError& error) {
        problem = make_message("rank ", rank(), ": ", error.what());
      }
    }
    agree_or_throw(problem, rank());
    const ncclUniqueId id = share_unique_id(rank());
    ncclComm_t comm = nullptr;
    check_nccl(ncclCommInitRank(&comm, world_size(), id, rank()), "ncclCommInitRank", nullptr);
    comm_ = comm;
  } catch (...) {
    release();
    throw;
  }
}

NcclCommunicator::~NcclCommunicator() { release(); }

void NcclCommunicator::release() {
  if (communication_stream_ != nullptr) {
    report_cuda(cudaStreamSynchronize(communication_stream_), "cudaStreamSynchronize");
  }
  if (comm_ != nullptr) report_nccl(ncclCommDestroy(comm_), "ncclCommDestroy");
  if (compute_ready_ != nullptr) report_cuda(cudaEventDestroy(compute_ready_), "cudaEventDestroy");
  if (communication_stream_ != nullptr) report_cuda(cudaStreamDestroy(communication_stream_), "cudaStreamDestroy");
  comm_ = nullptr;
  compute_ready_ = nullptr;
  communication_stream_ = nullptr;
}

void NcclCommunicator::barrier() { bootstrap_.barrier(); }

void NcclCommunicator::abort(int code, const std::string& reason) {
  if (comm_ != nullptr) ncclCommAbort(comm_);
  abort_job(rank(), world_size(), code, reason);
}

void NcclCommunicator::wait_for_compute_stream() {
  // Recording and waiting right away makes one event enough: the wait captures the record as it is now.
  check_cuda(cudaEventRecord(compute_ready_, compute_stream_), "cudaEventRecord (compute stream)");
  check_cuda(cudaStreamWaitEvent(communication_stream_, compute_ready_, 0),
             "cudaStreamWaitEvent (NCCL waits for compute)");
}

std::unique_ptr<PendingCollective> NcclCommunicator::finish_launch() {
  // One event per collective, so that several can be in flight and be waited for in any order.
  cudaEvent_t done = nullptr;
  check_cuda(cudaEventCreateWithFlags(&done, cudaEventDisableTiming), "cudaEventCreateWithFlags");
  const cudaError_t recorded = cudaEventRecord(done, communication_stream_);
  if (recorded != cudaSuccess) cudaEventDestroy(done);
  check_cuda(recorded, "cudaEventRecord (communication stream)");
  return std::make_unique<NcclPending>(done, compute_stream_, comm_);
}

// Host tensors (a loss, the norm's per-rank sums, a test's values) go through GPU memory: copied up, reduced or
// gathered by NCCL, waited for, copied back. Small by nature; the large buffers of a step live on the GPU already.
class HostStaging {
 public:
  explicit HostStaging(Tensor host) : host_(host) {
    if (host.device() != Device::CPU) return;
    storage_ = Buffer(static_cast<std::size_t>(host.bytes()), MemoryCategory::CommBuffers, Device::CUDA);
    device_ = view_of(storage_, host.dtype());
    ops::copy(device_, host);
  }
  bool staged() const { return storage_.data() != nullptr; }
  Tensor tensor() const { return staged() ? device_ : host_; }
  void copy_back() const {
    if (staged()) ops::copy(host_, device_);
  }

 private:
  Tensor host_;
  Buffer storage_;
  Tensor device_;
};

std::unique_ptr<PendingCollective> NcclCommunicator::start_all_reduce(Tensor data, Reduction reduction) {
  if (data.device() == Device::CPU) {
    const HostStaging staged(data);
    start_all_reduce(staged.tensor(), reduction)->wait();
    staged.copy_back();
    return std::make_unique<CompletedCollective>();
  }
  require_gpu(data, "all-reduce");
  const ncclRedOp_t operation = nccl_operation_of(reduction, data.dtype(), "all-reduce");
  wait_for_compute_stream();
  check_nccl(ncclAllReduce(data.data(), data.data(), static_cast<std::size_t>(data.numel()), nccl_type_of(data.dtype()),
                           operation, comm_, communication_stream_),
             "ncclAllReduce", comm_);
  return finish_launch();
}

std::unique_ptr<PendingCollective> NcclCommunicator::start_reduce_scatter(Tensor output, Tensor input,
                                                                          Reduction reduction) {
  if (input.device() == Device::CPU && output.device() == Device::CPU) {
    const HostStaging staged_input(input), staged_output(output);
    start_reduce_scatter(staged_output.tensor(), staged_input.tensor(), reduction)->wait();
    staged_output.copy_back();
    return std::make_unique<CompletedCollective>();
  }
  require_gpu(input, "reduce-scatter");
  require_gpu(output, "reduce-scatter");
  const ncclRedOp_t operation = nccl_operation_of(reduction, input.dtype(), "reduce-scatter");
  wait_for_compute_stream();
  // NCCL's count is the output's: each rank receives that many elements.
  check_nccl(ncclReduceScatter(input.data(), output.data(), static_cast<std::size_t>(output.numel()),
                               nccl_type_of(input.dtype()), operation, comm_, communication_stream_),
             "ncclReduceScatter", comm_);
  return finish_launch();
}

std::unique_ptr<PendingCollective> NcclCommunicator::start_all_gather(Tensor output, Tensor input) {
  if (input.device() == Device::CPU && output.device() == Device::CPU) {
    const HostStaging staged_input(input), staged_output(output);
    start_all_gather(staged_output.tensor(), staged_input.tensor())->wait();
    staged_output.copy_back();
    return std::make_unique<CompletedCollective>();
  }
  require_gpu(input, "all-gather");
  require_gpu(output, "all-gather");
  wait_for_compute_stream();
  // NCCL's count is the input's: each rank sends that many elements.
  check_nccl(ncclAllGather(input.data(), output.data(), static_cast<std::size_t>(input.numel()),
                           nccl_type_of(input.dtype()), comm_, communication_stream_),
             "ncclAllGather", comm_);
  return finish_launch();
}

void NcclCommunicator::run_broadcast(Tensor data, int root) {
  if (data.device() == Device::CPU) {
    const HostStaging staged(data);
    run_broadcast(staged.tensor(), root);
    staged.copy_back();
    return;
  }
  require_gpu(data, "broadcast");
  wait_for_compute_stream();
  check_nccl(ncclBroadcast(data.data(), data.data(), static_cast<std::size_t>(data.numel()), nccl_type_of(data.dtype()),
                           root, comm_, communication_stream_),
             "ncclBroadcast", comm_);
  finish_launch()->wait();
}

}  // namespace ladder
