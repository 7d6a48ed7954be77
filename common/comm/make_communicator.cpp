#include <cstdlib>
#include <string>

#include "common/comm/communicator.hpp"
#include "common/comm/local_communicator.hpp"
#include "common/cuda_runtime.hpp"
#include "common/error.hpp"
#ifdef LADDER_WITH_MPI
#include "common/comm/mpi/mpi_communicator.hpp"
#endif
#ifdef LADDER_WITH_NCCL
#include "common/comm/nccl/nccl_communicator.hpp"
#endif

namespace ladder {

namespace {

// The launchers announce the world size in their own variables: MPICH's Hydra (PMI), Open MPI, PMIx and Slurm.
int launcher_world_size() {
  for (const char* variable : {"PMI_SIZE", "OMPI_COMM_WORLD_SIZE", "PMIX_SIZE", "SLURM_NTASKS", "MPI_LOCALNRANKS"}) {
    if (const char* value = std::getenv(variable)) return std::atoi(value);
  }
  return 1;
}

std::unique_ptr<Communicator> make_mpi() {
#ifdef LADDER_WITH_MPI
  return std::make_unique<MpiCommunicator>();
#else
  throw LadderError("--comm mpi: this build of ladder has no MPI (install libmpich-dev or libopenmpi-dev and "
                    "configure again)");
#endif
}

std::unique_ptr<Communicator> make_nccl() {
#ifdef LADDER_WITH_NCCL
  return std::make_unique<NcclCommunicator>();
#else
  // Name exactly what is missing: the NCCL backend needs CUDA, NCCL itself, and MPI to start its ranks.
  std::string missing;
#ifndef LADDER_WITH_CUDA
  missing += "CUDA (no nvcc found, or configured with -DLADDER_CUDA=OFF)";
#endif
#ifndef LADDER_WITH_MPI
  missing += std::string(missing.empty() ? "" : " and ") + "MPI (install libmpich-dev or libopenmpi-dev)";
#endif
  if (missing.empty()) missing = "NCCL (nccl.h and libnccl were found neither in the CUDA toolkit nor the system)";
  std::string advice = "configure again once that is installed";
#ifdef LADDER_WITH_MPI
  advice += ", or use --comm mpi";
#endif
  throw LadderError(make_message("--comm nccl: this build of ladder has no NCCL backend: it lacks ", missing, "; ",
                                 advice));
#endif
}

#ifdef LADDER_WITH_NCCL
constexpr bool kNcclBuilt = true;
#else
constexpr bool kNcclBuilt = false;
#endif

}  // namespace

bool launched_with_several_ranks() { return launcher_world_size() > 1; }

int launcher_local_size() {
  for (const char* variable : {"OMPI_COMM_WORLD_LOCAL_SIZE", "MPI_LOCALNRANKS", "PMIX_LOCAL_SIZE", "SLURM_NTASKS_PER_NODE"}) {
    if (const char* value = std::getenv(variable)) return std::atoi(value);
  }
  return launcher_world_size();  // unknown: as if every rank were here, which never lets two ranks share a GPU
}

std::unique_ptr<Communicator> make_communicator(const std::string& backend, const std::string& device,
                                                std::string* why) {
  auto say = [&](const std::string& reason) {
    if (why != nullptr) *why = reason;
  };
  if (backend == "local") {
    say("local: chosen by --comm");
    LADDER_CHECK(!launched_with_several_ranks(), "--comm local, but the launcher started ", launcher_world_size(),
                 " ranks: each would train alone (use --comm mpi or auto)");
    return std::make_unique<LocalCommunicator>();
  }
  if (backend == "mpi") {
    say("mpi: chosen by --comm");
    return make_mpi();
  }
  if (backend == "nccl") {
    say("nccl: chosen by --comm");
    return make_nccl();
  }
  if (backend == "auto") {
    if (!launched_with_several_ranks()) {
      say("local: one rank");
      return std::make_unique<LocalCommunicator>();
    }
    const int gpus = cuda_device_count();
    const int here = launcher_local_size();
    if (device == "cpu" || gpus == 0) {
      say(make_message("mpi: ", launcher_world_size(), " ranks on the CPU"));
      return make_mpi();
    }
    if (here > gpus) {
      say(make_message("mpi: ", here, " ranks share ", gpus, " GPU(s) on this machine, so collectives are staged "
                       "through host memory (NCCL needs a GPU per rank)"));
      return make_mpi();
    }
    if (!kNcclBuilt) {
      say(make_message("mpi: a GPU per rank, but this build has no NCCL, so collectives are staged through host "
                       "memory"));
      return make_mpi();
    }
    say(make_message("nccl: ", here, " rank(s) on this machine, ", gpus, " GPU(s): one GPU per rank"));
    return make_nccl();
  }
  throw LadderError(make_message("unknown communicator '", backend, "': expected auto, local, mpi or nccl"));
}

}  // namespace ladder
