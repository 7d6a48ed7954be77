// The NCCL backend's start-up: each rank's GPU, the agreement to go on, and the unique id; and its checks.
#include "common/comm/nccl/nccl_startup.hpp"

#include <array>
#include <cstring>
#include <vector>

#include "common/error.hpp"

namespace ladder::nccl_startup {

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

}  // namespace ladder::nccl_startup
