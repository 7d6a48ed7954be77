#include "common/comm/mpi/mpi_communicator.hpp"

#include <chrono>
#include <cstdio>
#include <functional>
#include <thread>
#include <vector>

#include "common/comm/mpi/mpi_check.hpp"
#include "common/error.hpp"
#include "common/ops/ops.hpp"

namespace ladder {

namespace {

// Sums of 16-bit floats: each pair is added in fp32 and rounded once, as the GPU's reductions do.
template <class Half16>
void sum_16bit(void* in, void* inout, int* length, MPI_Datatype*) {
  const auto* a = static_cast<const Half16*>(in);
  auto* b = static_cast<Half16*>(inout);
  for (int i = 0; i < *length; ++i) b[i] = Half16(static_cast<float>(a[i]) + static_cast<float>(b[i]));
}

// A view that MPI can work on: the tensor itself on the host, or a host copy of a GPU tensor.
class HostView {
 public:
  HostView(Tensor tensor, bool copy_in) : tensor_(tensor) {
    if (tensor.device() == Device::CPU) {
      host_ = tensor;
      return;
    }
    staging_ = Buffer(static_cast<std::size_t>(tensor.bytes()), MemoryCategory::CommBuffers);
    host_ = Tensor(staging_.data(), tensor.dtype(), {tensor.numel()});
    if (copy_in) ops::copy(host_, tensor);
  }
  Tensor host() const { return host_; }
  // Sends the result back to the GPU (nothing to do on the host).
  void copy_out() const {
    if (tensor_.device() != Device::CPU) ops::copy(tensor_, host_);
  }

 private:
  Tensor tensor_;
  Tensor host_;
  Buffer staging_;
};

// An MPI request plus what must happen after it completes (averaging, copying back to the GPU).
class MpiPending : public PendingCollective {
 public:
  MpiPending(MPI_Request request, std::function<void()> finish) : request_(request), finish_(std::move(finish)) {}
  ~MpiPending() override {
    // A collective may not be abandoned: every rank has to complete it.
    if (request_ != MPI_REQUEST_NULL) MPI_Wait(&request_, MPI_STATUS_IGNORE);
  }
  void wait() override {
    check_mpi(MPI_Wait(&request_, MPI_STATUS_IGNORE), "MPI_Wait");
    if (finish_) finish_();
    finish_ = nullptr;
  }

 private:
  MPI_Request request_;
  std::function<void()> finish_;
};

}  // namespace

MpiCommunicator::MpiCommunicator() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) {
    int provided = 0;
    check_mpi(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    finalize_on_exit_ = true;
  }
  check_mpi(MPI_Comm_dup(MPI_COMM_WORLD, &comm_), "MPI_Comm_dup");
  // Errors come back as codes, so each can be reported with the call that failed.
  MPI_Comm_set_errhandler(comm_, MPI_ERRORS_RETURN);
  MPI_Comm_rank(comm_, &rank_);
  MPI_Comm_size(comm_, &world_size_);
  // The ranks that share this node's memory: their number orders the node's GPUs among them.
  MPI_Comm node = MPI_COMM_NULL;
  check_mpi(MPI_Comm_split_type(comm_, MPI_COMM_TYPE_SHARED, rank_, MPI_INFO_NULL, &node), "MPI_Comm_split_type");
  MPI_Comm_rank(node, &local_rank_);
  MPI_Comm_size(node, &local_size_);
  MPI_Comm_free(&node);
  check_mpi(MPI_Type_contiguous(2, MPI_BYTE, &two_bytes_), "MPI_Type_contiguous");
  check_mpi(MPI_Type_commit(&two_bytes_), "MPI_Type_commit");
  check_mpi(MPI_Op_create(&sum_16bit<Half>, 1, &half_sum_), "MPI_Op_create");
  check_mpi(MPI_Op_create(&sum_16bit<BFloat16>, 1, &bfloat16_sum_), "MPI_Op_create");
}

MpiCommunicator::~MpiCommunicator() {
  // Whoever initialised MPI may have finalised it already (a static communicator outlives main's MPI_Finalize).
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (finalized) return;
  MPI_Op_free(&half_sum_);
  MPI_Op_free(&bfloat16_sum_);
  MPI_Type_free(&two_bytes_);
  MPI_Comm_free(&comm_);
  if (finalize_on_exit_) MPI_Finalize();
}

void MpiCommunicator::barrier() { check_mpi(MPI_Barrier(comm_), "MPI_Barrier"); }

void abort_job(int rank, int world_size, int code, const std::string& reason) {
  std::fprintf(stderr, "rank %d of %d: %s\n", rank, world_size, reason.c_str());
  std::fflush(stderr);
  // The launcher forwards each rank's output through a pipe, and MPI_Abort has it kill the whole job: aborting at
  // once can end the job before the launcher has read this message (seen with MPICH's Hydra on a loaded machine:
  // one run in six lost it). Half a second lets the message out; the job is failing anyway.
  std::this_thread::sleep_for(std::chrono::milliseconds(500));
  MPI_Abort(MPI_COMM_WORLD, code);
  std::_Exit(code);  // MPI_Abort does not return; this keeps [[noreturn]] honest if it ever does
}

void MpiCommunicator::abort(int code, const std::string& reason) { abort_job(rank_, world_size_, code, reason); }

namespace {

struct MpiElement {
  MPI_Datatype type;
  MPI_Op sum;
};

MpiElement element_of(DType dtype, MPI_Datatype two_bytes, MPI_Op half_sum, MPI_Op bfloat16_sum) {
  switch (dtype) {
    case DType::F32: return {MPI_FLOAT, MPI_SUM};
    case DType::F64: return {MPI_DOUBLE, MPI_SUM};
    case DType::I32: return {MPI_INT, MPI_SUM};
    case DType::F16: return {two_bytes, half_sum};
    case DType::BF16: return {two_bytes, bfloat16_sum};
  }
  throw LadderError("unknown dtype in a collective");
}

int mpi_count(std::int64_t count) {
  LADDER_CHECK(count <= 2147483647, "a single MPI collective of ", count, " elements exceeds MPI's int count");
  return static_cast<int>(count);
}

}  // namespace

std::unique_ptr<PendingCollective> MpiCommunicator::start_all_reduce(Tensor data, Reduction reduction) {
  LADDER_CHECK(!(reduction == Reduction::Average && data.dtype() == DType::I32), "all-reduce: cannot average I32");
  auto view = std::make_shared<HostView>(data, true);
  const MpiElement element = element_of(data.dtype(), two_bytes_, half_sum_, bfloat16_sum_);
  MPI_Request request;
  check_mpi(MPI_Iallreduce(MPI_IN_PLACE, view->host().data(), mpi_count(data.numel()), element.type, element.sum, comm_,
                           &request),
            "MPI_Iallreduce");
  const double inverse = 1.0 / world_size_;
  return std::make_unique<MpiPending>(request, [view, reduction, inverse] {
    if (reduction == Reduction::Average) ops::scale(view->host(), inverse);
    view->copy_out();
  });
}

std::unique_ptr<PendingCollective> MpiCommunicator::start_reduce_scatter(Tensor output, Tensor input,
                                                                         Reduction reduction) {
  LADDER_CHECK(!(reduction == Reduction::Average && input.dtype() == DType::I32), "reduce-scatter: cannot average I32");
  auto in = std::make_shared<HostView>(input, true);
  auto out = std::make_shared<HostView>(output, false);
  const MpiElement element = element_of(input.dtype(), two_bytes_, half_sum_, bfloat16_sum_);
  MPI_Request request;
  check_mpi(MPI_Ireduce_scatter_block(in->host().data(), out->host().data(), mpi_count(output.numel()), element.type,
                                      element.sum, comm_, &request),
            "MPI_Ireduce_scatter_block");
  const double inverse = 1.0 / world_size_;
  return std::make_unique<MpiPending>(request, [in, out, reduction, inverse] {
    if (reduction == Reduction::Average) ops::scale(out->host(), inverse);
    out->copy_out();
  });
}

std::unique_ptr<PendingCollective> MpiCommunicator::start_all_gather(Tensor output, Tensor input) {
  auto in = std::make_shared<HostView>(input, true);
  auto out = std::make_shared<HostView>(output, false);
  const MpiElement element = element_of(input.dtype(), two_bytes_, half_sum_, bfloat16_sum_);
  MPI_Request request;
  const int count = mpi_count(input.numel());
  check_mpi(MPI_Iallgather(in->host().data(), count, element.type, out->host().data(), count, element.type, comm_,
                           &request),
            "MPI_Iallgather");
  return std::make_unique<MpiPending>(request, [in, out] { out->copy_out(); });
}

void MpiCommunicator::run_broadcast(Tensor data, int root) {
  HostView view(data, true);
  const MpiElement element = element_of(data.dtype(), two_bytes_, half_sum_, bfloat16_sum_);
  check_mpi(MPI_Bcast(view.host().data(), mpi_count(data.numel()), element.type, root, comm_), "MPI_Bcast");
  view.copy_out();
}

}  // namespace ladder
