#include "common/comm/collective_queue.hpp"

#include <algorithm>

#include "common/error.hpp"

namespace ladder {

CollectiveQueue::CollectiveQueue(int max_in_flight) : max_in_flight_(max_in_flight) {
  LADDER_CHECK(max_in_flight >= 1, "a collective queue needs room for at least one collective, got ", max_in_flight);
}

void CollectiveQueue::make_room() {
  while (in_flight() >= max_in_flight_) complete_oldest();
}

void CollectiveQueue::push(std::unique_ptr<PendingCollective> pending, std::function<void()> on_complete) {
  make_room();
  entries_.push_back({std::move(pending), std::move(on_complete)});
  most_in_flight_ = std::max(most_in_flight_, in_flight());
}

void CollectiveQueue::wait_all() {
  while (!entries_.empty()) complete_oldest();
}

void CollectiveQueue::complete_oldest() {
  // Taken off the line first: if the completion throws, the entry is not waited for twice.
  Entry entry = std::move(entries_.front());
  entries_.pop_front();
  entry.pending->wait();
  if (entry.on_complete) entry.on_complete();
}

}  // namespace ladder
