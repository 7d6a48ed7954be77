/// @file collective_queue.hpp
/// @brief Collectives in flight, at most a few at a time, each with what must happen once it completes.
#pragma once

#include <deque>
#include <functional>
#include <memory>

#include "common/comm/communicator.hpp"

namespace ladder {

/// A first-in, first-out line of started collectives. Bounding how many are in flight bounds the buffers they hold:
/// a stage calls make_room() before it allocates the next collective's buffers, so with a limit of two, one
/// bucket is being reduced while the next is packed (double buffering, as DeepSpeed's reduce buckets).
class CollectiveQueue {
 public:
  /// A queue that lets at most `max_in_flight` (>= 1) collectives run at once.
  explicit CollectiveQueue(int max_in_flight = 2);
  /// Waits for the oldest collectives (running their completions) until another one may start.
  void make_room();
  /// Adds a started collective and what to do once it is complete (e.g. copy its output out, free its buffers).
  void push(std::unique_ptr<PendingCollective> pending, std::function<void()> on_complete);
  /// Waits for every collective in flight, oldest first, running each completion.
  void wait_all();
  /// Collectives in flight now.
  int in_flight() const { return static_cast<int>(entries_.size()); }
  /// The most that were ever in flight at once.
  int most_in_flight() const { return most_in_flight_; }

 private:
  struct Entry {
    std::unique_ptr<PendingCollective> pending;
    std::function<void()> on_complete;
  };
  void complete_oldest();
  int max_in_flight_;
  int most_in_flight_ = 0;
  std::deque<Entry> entries_;
};

}  // namespace ladder
