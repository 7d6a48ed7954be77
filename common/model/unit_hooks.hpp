/// @file unit_hooks.hpp
/// @brief The four calls the model makes around every unit, through which parallel stages act.
#pragma once

namespace ladder {

/// Called by the GPT around each unit (0 = embeddings, 1..L = blocks, L+1 = head). The model knows nothing of
/// parallelism: DDP all-reduces a bucket in after_backward, ZeRO-2 reduce-scatters there, FSDP gathers a unit's
/// parameters in before_forward/before_backward and frees them after. The default does nothing.
class UnitHooks {
 public:
  virtual ~UnitHooks() = default;
  /// Unit `unit`'s parameters are about to be read by the forward pass.
  virtual void before_forward(int unit) { (void)unit; }
  /// The forward pass is done with unit `unit`.
  virtual void after_forward(int unit) { (void)unit; }
  /// Unit `unit`'s backward is about to run (its parameters will be read).
  virtual void before_backward(int unit) { (void)unit; }
  /// Unit `unit`'s gradients are complete for this step.
  virtual void after_backward(int unit) { (void)unit; }
};

}  // namespace ladder
