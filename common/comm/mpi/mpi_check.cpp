#include "common/comm/mpi/mpi_check.hpp"

#include <mpi.h>

#include <string>

#include "common/error.hpp"

namespace ladder {

void check_mpi(int status, const char* call) {
  if (status == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int length = 0;
  MPI_Error_string(status, text, &length);
  throw LadderError(make_message(call, " failed: ", std::string(text, static_cast<std::size_t>(length))));
}

}  // namespace ladder
