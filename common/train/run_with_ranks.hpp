/// @file run_with_ranks.hpp
/// @brief main() for stages that run as several ranks: the communicator chosen, each rank on its own GPU, and one
/// failing rank ending the whole job, never a hang.
#pragma once

#include <functional>
#include <string>

#include "common/comm/communicator.hpp"

namespace CLI {
class App;
}

namespace ladder {

/// Creates this process's communicator as --comm says (with --device meta: rank 0 of --simulate-ranks simulated
/// ranks) (auto by default: see make_communicator; the choice and
/// its reason are printed by rank 0), puts a rank that will train on a GPU on GPU local_rank % GPUs (NCCL picks
/// its own the same way), and runs `body` with it. The communicator is made before the stage parses its flags
/// (an error must be reportable by rank), so --comm and --device are read from argv first; the stage registers
/// --comm with add_communicator_flag for --help and validation. Errors are reported as run_main does, prefixed
/// with "rank r of N"; with several ranks the failing rank then aborts the job (MPI_Abort), since the others
/// would otherwise wait in a collective forever.
int run_with_ranks(const std::string& stage, int argc, char** argv, const std::function<void(Communicator&)>& body);

/// Adds --comm (auto | local | mpi | nccl) and --simulate-ranks (with --device meta) to a multi-rank stage's
/// command line.
void add_communicator_flag(CLI::App& app);

/// The value of `flag` in argv ("--flag value" or "--flag=value"; the last one wins), or `fallback`.
std::string flag_value(int argc, char** argv, const std::string& flag, const std::string& fallback);

}  // namespace ladder
