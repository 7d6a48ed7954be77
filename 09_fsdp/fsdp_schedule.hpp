/// @file fsdp_schedule.hpp
/// @brief FSDP's schedule as it happened: which unit was gathered, computed, freed and reduced, in order and when.
#pragma once

#include <chrono>
#include <cstdint>
#include <utility>
#include <string>
#include <vector>

namespace ladder::stage09 {

/// What happened to a unit.
enum class FsdpEventKind {
  GatherIssued,         ///< its all-gather started
  GatherWaited,         ///< the rank waited for that all-gather to finish
  Forward,              ///< its forward computation begins
  Backward,             ///< its backward computation begins
  ReduceScatterIssued,  ///< its gradients' reduce-scatter started
  Freed,                ///< its gathered weights were freed
};

/// "gather issued", "gather waited", "forward", "backward", "reduce-scatter issued", "freed".
std::string event_name(FsdpEventKind kind);

/// One event: what, to which unit, and when (seconds since recording began).
struct FsdpEvent {
  FsdpEventKind kind = FsdpEventKind::GatherIssued;  ///< what happened
  int unit = 0;                                      ///< to which unit
  double seconds = 0;                                ///< when, since the recording began
};

/// A log of events, off until start() is called (the stage records a few steps, not a whole run).
class FsdpSchedule {
 public:
  /// Starts (or restarts) recording, with time zero now.
  void start();
  /// Stops recording; the events stay.
  void stop() { recording_ = false; }
  /// Appends an event if recording.
  void note(FsdpEventKind kind, int unit);
  /// The events recorded since the last start().
  const std::vector<FsdpEvent>& events() const { return events_; }
  /// "gather issued 0, gather waited 0, ..." one line per event, for tests and logs.
  std::vector<std::string> lines() const;
  /// Writes the events as JSON lines {"event", "unit", "seconds"} to `path` (scripts/fsdp_timeline.py draws them).
  void write_jsonl(const std::string& path) const;

 private:
  bool recording_ = false;
  std::chrono::steady_clock::time_point start_;
  std::vector<FsdpEvent> events_;
};

/// --timeline: records the schedule during one chosen step and writes it (rank 0) when the step ends.
class TimelineRecorder {
 public:
  /// Records into `schedule` during 1-based step `step` and writes to `path` (nothing when `path` is empty).
  TimelineRecorder(FsdpSchedule& schedule, std::string path, std::int64_t step, bool writes)
      : schedule_(schedule), path_(std::move(path)), step_(step), writes_(writes) {}
  /// Call at the start of 0-based step `step`.
  void step_begins(std::int64_t step) {
    if (!path_.empty() && step + 1 == step_) schedule_.start();
  }
  /// Call once the step's gradients are reduced.
  void step_ends(std::int64_t step) {
    if (path_.empty() || step + 1 != step_) return;
    schedule_.stop();
    if (writes_) schedule_.write_jsonl(path_);
  }

 private:
  FsdpSchedule& schedule_;
  std::string path_;
  std::int64_t step_;
  bool writes_;
};

}  // namespace ladder::stage09
