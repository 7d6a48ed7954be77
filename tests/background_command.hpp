// A command started in the background, for tests that must stop a run at a chosen moment (SIGKILL in the middle of
// writing a checkpoint, as a preempted job or a closed laptop would).
#pragma once

#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "tests/test_support.hpp"

namespace ladder::testing_support {

/// A shell command running in its own process, its output going to a file.
class BackgroundCommand {
 public:
  BackgroundCommand(const std::string& command, std::string output_path) : output_path_(std::move(output_path)) {
    pid_ = ::fork();
    if (pid_ == 0) {
      const std::string line = "exec " + command + " > " + output_path_ + " 2>&1";
      ::execl("/bin/sh", "sh", "-c", line.c_str(), static_cast<char*>(nullptr));
      ::_exit(127);
    }
  }
  ~BackgroundCommand() {
    if (pid_ > 0 && !finished_) kill_now();
  }
  BackgroundCommand(const BackgroundCommand&) = delete;
  BackgroundCommand& operator=(const BackgroundCommand&) = delete;

  /// Waits until the output contains `text` (true) or the process has ended without it (false). A hang guard of two
  /// minutes ends the wait too; it bounds a broken test, it is not a timing assertion.
  bool wait_for_output(const std::string& text) {
    const auto give_up = std::chrono::steady_clock::now() + std::chrono::minutes(2);
    while (std::chrono::steady_clock::now() < give_up) {
      if (output().find(text) != std::string::npos) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        finished_ = true;
        return output().find(text) != std::string::npos;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    return false;
  }
  /// Sends SIGKILL and reaps the process; true when SIGKILL is what ended it.
  bool kill_now() {
    ::kill(pid_, SIGKILL);
    int status = 0;
    ::waitpid(pid_, &status, 0);
    finished_ = true;
    return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL;
  }
  /// Everything it printed so far.
  std::string output() const { return read_file(output_path_); }

 private:
  std::string output_path_;
  pid_t pid_ = -1;
  bool finished_ = false;
};

}  // namespace ladder::testing_support
