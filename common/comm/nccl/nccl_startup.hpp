/// @file nccl_startup.hpp
/// @brief How an NCCL communicator starts: each rank's GPU, every rank agreeing it can go on, NCCL's unique id
/// carried by MPI; and the checks every NCCL and CUDA call goes through (MPI's: mpi_check.hpp).
#pragma once

#include <cuda_runtime.h>
#include <mpi.h>
#include <nccl.h>

#include <string>

#include "common/comm/mpi/mpi_check.hpp"  // check_mpi, for the MPI calls of the start-up

/// The NCCL backend's start-up and checks, shared by its files.
namespace ladder::nccl_startup {

/// The oldest NCCL the backend accepts (ncclAvg arrived in 2.10, ncclGetLastError in 2.13).
inline constexpr int kMinimumNcclVersion = NCCL_VERSION(2, 13, 0);
/// What a refusal advises instead.
inline constexpr const char* kUseMpiInstead =
    "use --comm mpi, which stages GPU buffers through the host and so lets ranks share a GPU (or run on the CPU)";

/// Throws LadderError naming `call` and CUDA's message unless `status` is success.
void check_cuda(cudaError_t status, const char* call);
/// Throws LadderError naming `call`, NCCL's message and its last error detail unless `status` is success.
void check_nccl(ncclResult_t status, const char* call, ncclComm_t comm);

/// This rank's GPU, numbered by its rank on the node; `problem` says what is wrong when it has none of its own (the
/// node's ranks compare PCI bus ids, so ranks that would share a GPU are refused). Every rank makes the same MPI
/// calls whatever happens, so a refusal never leaves another rank waiting.
int pick_gpu(int rank, std::string& problem);

/// Every rank learns whether all ranks are fine, so that all throw together: never one rank throwing while the
/// others wait for it in the next collective.
void agree_or_throw(const std::string& problem, int rank);

/// Rank 0 makes the id that names the NCCL communicator; MPI carries it, and rank 0's success, to everyone.
ncclUniqueId share_unique_id(int rank);

}  // namespace ladder::nccl_startup
