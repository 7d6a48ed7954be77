#include "common/comm/nccl/nccl_communicator.hpp"

#include <array>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "common/comm/mpi/mpi_communicator.hpp"
#include "common/error.hpp"
#include "common/ops/ops.hpp"

// ncclAvg arrived in NCCL 2.10 and ncclGetLastError in 2.13.
static_assert(NCCL_VERSION_CODE >= NCCL_VERSION(2, 13, 0), "the NCCL backend needs NCCL 2.13 or newer");

namespace ladder {

namespace {

constexpr int kMinimumNcclVersion = NCCL_VERSION(2, 13, 0);
constexpr const char* kUseMpiInstead =
    "use --comm mpi, which stages GPU buffers through the host and so lets ranks share a GPU (or run on the CPU)";

void check_cuda(cudaError_t status, const char* call) {
  if (status == cudaSuccess) return;
  throw LadderError(make_message(call, " failed: ", cudaGetErrorString(status)));
}

void check_nccl(ncclResult_t status, const char* call, ncclComm_t comm) {
  if (status == ncclSuccess) return;
  std::string message = make_message(call, " failed: ", ncclGetErrorString(status));
  // The result code says only the kind of failure (e.g. "invalid usage"); NCCL's last message says which.
  const char* detail = ncclGetLastError(comm);
  if (detail != nullptr && detail[0] != '\0') message += make_message(" (", detail, ")");
  throw LadderError(message);
}

void check_mpi(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw LadderError(make_message(call, " failed: ", std::string(text, static_cast<std::size_t>(length))));
}

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

// Picks this rank's GPU (numbered by its rank on the node), and says what is wrong if it has none of its own. The
// PCI bus ids of the chosen GPUs are compared across the node, so that ranks that each see one GPU
// (CUDA_VISIBLE_DEVICES set per rank) pass, and ranks that outnumber the GPUs (two would share one) are refused.
// Every rank makes the same MPI calls whatever happens, so a refusal never leaves another rank waiting.
int pick_gpu(int rank, std::string& problem) {
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node),
            "MPI_Comm_split_type");
  int local_rank = 0, local_size = 1;
  MPI_Comm_rank(node, &local_rank);
  MPI_Comm_size(node, &local_size);

  int device_count = 0;
  const cudaError_t counted = cudaGetDeviceCount(&device_count);
  if (counted != cudaSuccess) {
    cudaGetLastError();  // no driver or no device: clear the error, there is simply no GPU
    device_count = 0;
  }
  constexpr int kBusIdLength = 32;
  std::array<char, kBusIdLength> bus_id{};
  int device = -1;
  if (device_count > 0) {
    device = local_rank % device_count;
    const cudaError_t named = cudaDeviceGetPCIBusId(bus_id.data(), kBusIdLength, device);
    if (named != cudaSuccess) {
      problem = make_message("rank ", rank, ": cudaDeviceGetPCIBusId failed: ", cudaGetErrorString(named));
    }
  }
  std::vector<char> all_bus_ids(static_cast<std::size_t>(local_size) * kBusIdLength);
  check_mpi(MPI_Allgather(bus_id.data(), kBusIdLength, MPI_CHAR, all_bus_ids.data(), kBusIdLength, MPI_CHAR, node),
            "MPI_Allgather");
  MPI_Comm_free(&node);

  if (device_count == 0) {
    problem = make_message("rank ", rank, " sees no GPU (cudaGetDeviceCount: ",
                           counted == cudaSuccess ? "0 devices" : cudaGetErrorString(counted),
                           "), but the NCCL backend needs one GPU per rank: ", kUseMpiInstead);
  } else if (problem.empty()) {
    // Every rank of the node sees the same list, so all of them refuse when any two share a GPU.
    const auto bus_id_of = [&](int local) { return &all_bus_ids[static_cast<std::size_t>(local) * kBusIdLength]; };
    bool shared = false;
    for (int local = 0; local < local_size; ++local) {
      for (int earlier = 0; earlier < local; ++earlier) {
        shared = shared || std::strncmp(bus_id_of(local), bus_id_of(earlier), kBusIdLength) == 0;
      }
    }
    if (shared) {
      problem = make_message("rank ", rank, " (GPU ", bus_id.data(), "): ", local_size, " ranks on this node but ",
                             device_count, " GPU(s) visible, so ranks would share a GPU; NCCL needs one GPU per rank "
                             "(it refuses two ranks on one GPU): start at most ", device_count, " ranks per node, or ",
                             kUseMpiInstead);
    }
  }
  return device;
}

// Every rank learns whether all ranks are fine, so that all throw together: never one rank throwing while the
// others wait for it in the next collective.
void agree_or_throw(const std::string& problem, int rank) {
  int fine_here = problem.empty() ? 1 : 0;
  int fine_everywhere = 0;
  check_mpi(MPI_Allreduce(&fine_here, &fine_everywhere, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD), "MPI_Allreduce");
  if (fine_everywhere == 1) return;
  if (!problem.empty()) throw LadderError(problem);
  throw LadderError(make_message("rank ", rank, ": another rank could not start NCCL (its own message says why)"));
}

// Rank 0 makes the id that names this NCCL communicator; MPI carries it, and rank 0's success, to everyone.
ncclUniqueId share_unique_id(int rank) {
  struct {
    ncclResult_t status = ncclSuccess;
    ncclUniqueId id{};
  } shared;
  if (rank == 0) shared.status = ncclGetUniqueId(&shared.id);
  check_mpi(MPI_Bcast(&shared, sizeof(shared), MPI_BYTE, 0, MPI_COMM_WORLD), "MPI_Bcast of the NCCL unique id");
  check_nccl(shared.status, "ncclGetUniqueId (on rank 0)", nullptr);
  return shared.id;
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
