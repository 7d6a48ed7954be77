/// @file mpi_check.hpp
/// @brief The check every MPI call of the MPI and NCCL backends goes through.
#pragma once

namespace ladder {

/// Throws LadderError naming `call` and MPI's message unless `status` is MPI_SUCCESS.
void check_mpi(int status, const char* call);

}  // namespace ladder
