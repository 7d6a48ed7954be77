/// @file mpi_communicator.hpp
/// @brief Collectives over MPI (MPICH or Open MPI): CPU buffers directly, GPU buffers staged through the host.
#pragma once

#include <mpi.h>

#include <string>

#include "common/comm/communicator.hpp"

namespace ladder {

/// Prints "rank r of N: reason" to stderr, gives the launcher a moment to forward it, and ends every rank of the
/// job with MPI_Abort(code).
[[noreturn]] void abort_job(int rank, int world_size, int code, const std::string& reason);

/// A communicator over MPI_COMM_WORLD (duplicated, so ladder's messages never mix with anyone else's).
/// Non-blocking collectives (MPI_Iallreduce, MPI_Ireduce_scatter_block, MPI_Iallgather) give the asynchronous
/// calls; fp16 and bf16 are summed by a custom operator that adds in fp32 and rounds once per pair. GPU tensors
/// are copied to a host buffer, reduced there and copied back, which is what lets several ranks share one GPU
/// (NCCL refuses that). Every MPI error becomes a LadderError naming the call.
class MpiCommunicator : public Communicator {
 public:
  /// Initialises MPI if nobody has yet (and then finalises it on destruction).
  MpiCommunicator();
  ~MpiCommunicator() override;
  MpiCommunicator(const MpiCommunicator&) = delete;
  MpiCommunicator& operator=(const MpiCommunicator&) = delete;

  /// This rank.
  int rank() const override { return rank_; }
  /// Ranks in MPI_COMM_WORLD.
  int world_size() const override { return world_size_; }
  /// "mpi".
  std::string backend() const override { return "mpi"; }
  /// Rank among those sharing this node's memory (MPI_Comm_split_type).
  int local_rank() const override { return local_rank_; }
  /// Ranks on this node.
  int local_size() const override { return local_size_; }
  /// MPI_Barrier.
  void barrier() override;
  /// Prints "rank r of N: reason" and calls MPI_Abort, which ends every rank.
  [[noreturn]] void abort(int code, const std::string& reason) override;

 protected:
  /// MPI_Iallreduce in place (then a scale by 1/N for the mean).
  std::unique_ptr<PendingCollective> start_all_reduce(Tensor data, Reduction reduction) override;
  /// MPI_Ireduce_scatter_block.
  std::unique_ptr<PendingCollective> start_reduce_scatter(Tensor output, Tensor input, Reduction reduction) override;
  /// MPI_Iallgather.
  std::unique_ptr<PendingCollective> start_all_gather(Tensor output, Tensor input) override;
  /// MPI_Bcast.
  void run_broadcast(Tensor data, int root) override;

 private:
  MPI_Comm comm_ = MPI_COMM_NULL;
  int rank_ = 0;
  int world_size_ = 1;
  int local_rank_ = 0;
  int local_size_ = 1;
  bool finalize_on_exit_ = false;
  MPI_Datatype two_bytes_ = MPI_DATATYPE_NULL;
  MPI_Op half_sum_ = MPI_OP_NULL;
  MPI_Op bfloat16_sum_ = MPI_OP_NULL;
};

}  // namespace ladder
