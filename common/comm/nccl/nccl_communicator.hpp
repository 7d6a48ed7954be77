/// @file nccl_communicator.hpp
/// @brief Collectives over NCCL between GPUs, one GPU per rank, started through MPI.
#pragma once

#include <cuda_runtime.h>
#include <nccl.h>

#include <string>

#include "common/comm/communicator.hpp"
#include "common/comm/mpi/mpi_communicator.hpp"

namespace ladder {

/// A communicator over NCCL, each rank on a GPU of its own. Its collectives move GPU memory; a collective of host
/// tensors (a loss, the gradient norm's per-rank sums) is staged through a GPU buffer and waited for.
///
/// MPI starts it: the ranks find their place on the node (MPI_Comm_split_type), rank 0 makes NCCL's unique id
/// and broadcasts it, and every rank joins with ncclCommInitRank. NCCL refuses two ranks on one GPU, so a node
/// with more ranks than GPUs is refused here, on every rank together, with a pointer to the MPI backend (which
/// stages GPU buffers through the host and so lets ranks share a GPU).
///
/// Streams: the ops run on the compute stream, which is the legacy default stream (stream 0) for now. The
/// collectives run on a stream of their own, created non-blocking so that it never synchronises implicitly
/// with stream 0: each collective first waits for an event recorded on the compute stream (the data is ready),
/// and its PendingCollective records an event on the communication stream when it is done. wait() makes the
/// compute stream wait for that event, so later kernels see the result, and then blocks the host on it, because
/// the interface promises a finished collective (the host may read a loss or a norm next). Dropping the host
/// block, and keeping only the stream wait, is what would let the backward pass overlap the communication.
///
/// Construct it before allocating GPU memory: it selects this rank's GPU (cudaSetDevice). Destroy it before
/// main() returns: NCCL and the CUDA runtime must both still be alive.
class NcclCommunicator : public Communicator {
 public:
  /// Starts MPI if needed, picks this rank's GPU and joins the NCCL communicator of all ranks.
  NcclCommunicator();
  /// Waits for the communication stream, then destroys the NCCL communicator, the stream and the events.
  ~NcclCommunicator() override;
  NcclCommunicator(const NcclCommunicator&) = delete;
  NcclCommunicator& operator=(const NcclCommunicator&) = delete;

  /// This rank.
  int rank() const override { return bootstrap_.rank(); }
  /// Ranks in MPI_COMM_WORLD, all in the NCCL communicator.
  int world_size() const override { return bootstrap_.world_size(); }
  /// "nccl".
  std::string backend() const override { return "nccl"; }
  /// Rank on this node.
  int local_rank() const override { return bootstrap_.local_rank(); }
  /// Ranks on this node.
  int local_size() const override { return bootstrap_.local_size(); }
  /// The CUDA device this rank uses.
  int device() const { return device_; }
  /// MPI_Barrier over the host processes (collectives already enqueued may still be running on the GPU).
  void barrier() override;
  /// Prints "rank r of N: reason", aborts the NCCL communicator (unblocking any kernel stuck waiting for a dead
  /// peer), then calls MPI_Abort, which ends every rank.
  [[noreturn]] void abort(int code, const std::string& reason) override;

 protected:
  /// ncclAllReduce in place (ncclAvg for the mean).
  std::unique_ptr<PendingCollective> start_all_reduce(Tensor data, Reduction reduction) override;
  /// ncclReduceScatter.
  std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor output, Tensor input, Reduction reduction) override;
  /// ncclAllGather.
  std::unique_ptr<PendingCollective> start_all_gather(Tensor output, Tensor input) override;
  /// ncclBroadcast in place, waited for.
  void run_broadcast(Tensor data, int root) override;

 private:
  // Makes the communication stream wait until the compute stream has reached this point.
  void wait_for_compute_stream();
  // Records the end of the collective just enqueued and wraps it for the caller.
  std::unique_ptr<PendingCollective> finish_launch();
  // Frees whatever has been created (the destructor, or a constructor that failed half-way).
  void release();

  MpiCommunicator bootstrap_;  // first member: MPI is up before NCCL starts and is finalised after it ends
  int device_ = -1;
  ncclComm_t comm_ = nullptr;
  cudaStream_t communication_stream_ = nullptr;
  cudaStream_t compute_stream_ = cudaStreamLegacy;
  cudaEvent_t compute_ready_ = nullptr;
};

}  // namespace ladder
