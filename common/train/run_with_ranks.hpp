/// @file run_with_ranks.hpp
/// @brief main() for stages that run as several ranks: one failing rank ends the whole job, never a hang.
#pragma once

#include <functional>
#include <string>

#include "common/comm/communicator.hpp"

namespace ladder {

/// Creates this process's communicator (MPI when started by mpiexec with several ranks, else local) and runs
/// `body` with it. Errors are reported as run_main does, prefixed with "rank r of N"; with several ranks the
/// failing rank then aborts the job (MPI_Abort), since the others would otherwise wait in a collective forever.
int run_with_ranks(const std::string& stage, const std::function<void(Communicator&)>& body);

}  // namespace ladder
