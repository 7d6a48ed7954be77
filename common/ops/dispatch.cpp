// The Tensor-level ops of ops.hpp: check every argument's device, dtype and shape, then call the CPU or the CUDA
// template of the same name for that device and storage type (device_dispatch.hpp). The loss, reduction and
// optimizer ops follow the same pattern in dispatch_training.cpp.
#include <cstdint>

#include "common/ops/device_dispatch.hpp"
#include "common/ops/dropout_mask.hpp"
#include "common/ops/op_checks.hpp"
#include "common/ops/ops.hpp"

namespace ladder::ops {

namespace {

// The typed start of an optional argument, nullptr when absent.
template <class S>
S* optional_data(const Tensor& tensor) {
  return is_absent(tensor) ? nullptr : tensor.as<S>();
}

}  // namespace

void embedding_forward(Tensor out, Tensor tokens, Tensor wte, Tensor wpe) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"out", out}, {"tokens", tokens}, {"wte", wte}, {"wpe", wpe}});
  check.shape({"out", out}, {kAnyExtent, kAnyExtent, kAnyExtent});
  const std::int64_t B = out.size(0), T = out.size(1), C = out.size(2);
  check.shape({"tokens", tokens}, {B, T});
  check.shape({"wte", wte}, {kAnyExtent, C});
  check.shape({"wpe", wpe}, {kAnyExtent, C});
  check.require(T <= wpe.size(0), "sequence length ", T, " exceeds the ", wpe.size(0), " positions of wpe");
  check.dtype(DType::I32, {{"tokens", tokens}});
  check.dtype(out.dtype(), {{"wte", wte}, {"wpe", wpe}});
  run_on_device(device, out.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, embedding_forward, out.as<S>(), tokens.as<std::int32_t>(), wte.as<S>(), wpe.as<S>(), B, T, C, wte.size(0));
  });
}

void embedding_backward(Tensor dwte, Tensor dwpe, Tensor dout, Tensor tokens) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"dwte", dwte}, {"dwpe", dwpe}, {"dout", dout}, {"tokens", tokens}});
  check.shape({"dout", dout}, {kAnyExtent, kAnyExtent, kAnyExtent});
  const std::int64_t B = dout.size(0), T = dout.size(1), C = dout.size(2);
  check.shape({"tokens", tokens}, {B, T});
  check.shape({"dwte", dwte}, {kAnyExtent, C});
  check.shape({"dwpe", dwpe}, {kAnyExtent, C});
  check.require(T <= dwpe.size(0), "sequence length ", T, " exceeds the ", dwpe.size(0), " positions of dwpe");
  check.dtype(DType::I32, {{"tokens", tokens}});
  check.dtype(dout.dtype(), {{"dwte", dwte}, {"dwpe", dwpe}});
  run_on_device(device, dout.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, embedding_backward, dwte.as<S>(), dwpe.as<S>(), dout.as<S>(), tokens.as<std::int32_t>(), B, T, C, dwte.size(0));
  });
}

void layernorm_forward(Tensor out, Tensor mean, Tensor rstd, Tensor inp, Tensor weight, Tensor bias) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"out", out}, {"mean", mean}, {"rstd", rstd}, {"inp", inp}, {"weight", weight}, {"bias", bias}});
  const std::int64_t C = check.last_extent({"inp", inp});
  check.require(C >= 1, "inp has shape ", inp.shape_string(), ", expected at least one channel to normalise");
  const std::int64_t N = check.rows({"inp", inp}, C);
  check.rows({"out", out}, C, N);
  check.element_count({"weight", weight}, C);
  check.element_count({"bias", bias}, C);
  check.element_count({"mean", mean}, N);
  check.element_count({"rstd", rstd}, N);
  check.dtype(inp.dtype(), {{"out", out}, {"weight", weight}, {"bias", bias}});
  check.dtype(compute_dtype(inp.dtype()), {{"mean", mean}, {"rstd", rstd}});
  run_on_device(device, inp.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    using Compute = ComputeType<S>;
    LADDER_BACKEND_CALL(backend, layernorm_forward, out.as<S>(), mean.as<Compute>(), rstd.as<Compute>(), inp.as<S>(), weight.as<S>(),
                           bias.as<S>(), N, C);
  });
}

void layernorm_backward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight, Tensor mean,
                        Tensor rstd) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"dinp", dinp},
                {"dweight", dweight},
                {"dbias", dbias},
                {"dout", dout},
                {"inp", inp},
                {"weight", weight},
                {"mean", mean},
                {"rstd", rstd}});
  const std::int64_t C = check.last_extent({"inp", inp});
  check.require(C >= 1, "inp has shape ", inp.shape_string(), ", expected at least one channel to normalise");
  const std::int64_t N = check.rows({"inp", inp}, C);
  check.rows({"dinp", dinp}, C, N);
  check.rows({"dout", dout}, C, N);
  check.element_count({"weight", weight}, C);
  // A frozen LayerNorm passes neither parameter gradient; one without the other is a mistake.
  const bool frozen = is_absent(dweight);
  check.require(frozen == is_absent(dbias), "dweight and dbias must both be given, or both be empty (frozen)");
  if (!frozen) {
    check.element_count({"dweight", dweight}, C);
    check.element_count({"dbias", dbias}, C);
    check.dtype(inp.dtype(), {{"dweight", dweight}, {"dbias", dbias}});
  }
  check.element_count({"mean", mean}, N);
  check.element_count({"rstd", rstd}, N);
  check.dtype(inp.dtype(), {{"dinp", dinp}, {"dout", dout}, {"weight", weight}});
  check.dtype(compute_dtype(inp.dtype()), {{"mean", mean}, {"rstd", rstd}});
  run_on_device(device, inp.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    using Compute = ComputeType<S>;
    LADDER_BACKEND_CALL(backend, layernorm_backward, dinp.as<S>(), optional_data<S>(dweight), optional_data<S>(dbias), dout.as<S>(), inp.as<S>(), weight.as<S>(),
                            mean.as<Compute>(), rstd.as<Compute>(), N, C);
  });
}

// Like LayerNorm, the matmuls accept any leading shape on inp/out (e.g. (B,T,C)) and flatten it into rows.
void matmul_forward(Tensor out, Tensor inp, Tensor weight, Tensor bias) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"out", out}, {"inp", inp}, {"weight", weight}, {"bias", bias}});
  check.shape({"weight", weight}, {kAnyExtent, kAnyExtent});
  const std::int64_t OC = weight.size(0), C = weight.size(1);
  const std::int64_t N = check.rows({"inp", inp}, C);
  check.rows({"out", out}, OC, N);
  check.dtype(inp.dtype(), {{"out", out}, {"weight", weight}});
  if (!is_absent(bias)) {
    check.element_count({"bias", bias}, OC);
    check.dtype(inp.dtype(), {{"bias", bias}});
  }
  run_on_device(device, inp.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, matmul_forward, out.as<S>(), inp.as<S>(), weight.as<S>(), optional_data<S>(bias), N, C, OC);
  });
}

void matmul_backward(Tensor dinp, Tensor dweight, Tensor dbias, Tensor dout, Tensor inp, Tensor weight) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device(
      {{"dinp", dinp}, {"dweight", dweight}, {"dbias", dbias}, {"dout", dout}, {"inp", inp}, {"weight", weight}});
  check.shape({"weight", weight}, {kAnyExtent, kAnyExtent});
  const std::int64_t OC = weight.size(0), C = weight.size(1);
  if (!is_absent(dweight)) {  // empty: a frozen weight, whose gradient nobody wants
    check.shape({"dweight", dweight}, {OC, C});
    check.dtype(inp.dtype(), {{"dweight", dweight}});
  }
  const std::int64_t N = check.rows({"inp", inp}, C);
  check.rows({"dinp", dinp}, C, N);
  check.rows({"dout", dout}, OC, N);
  check.dtype(inp.dtype(), {{"dinp", dinp}, {"dout", dout}, {"weight", weight}});
  if (!is_absent(dbias)) {
    check.element_count({"dbias", dbias}, OC);
    check.dtype(inp.dtype(), {{"dbias", dbias}});
  }
  run_on_device(device, inp.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, matmul_backward, dinp.as<S>(), optional_data<S>(dweight), optional_data<S>(dbias), dout.as<S>(), inp.as<S>(),
                         weight.as<S>(), N, C, OC);
  });
}

namespace {

// Checks qkv (B,T,3C) and the head count; returns C.
std::int64_t attention_channels(const ArgumentChecks& check, const Tensor& qkv, int n_head) {
  check.shape({"qkv", qkv}, {kAnyExtent, kAnyExtent, kAnyExtent});
  check.require(qkv.size(2) % 3 == 0, "qkv has shape ", qkv.shape_string(), ", expected a last extent of 3·C");
  const std::int64_t C = qkv.size(2) / 3;
  check.require(C >= 1, "qkv has shape ", qkv.shape_string(), ", expected at least one channel");
  check.require(n_head > 0 && C % n_head == 0, "n_head ", n_head, " does not divide the ", C, " channels");
  return C;
}

}  // namespace

void attention_forward(Tensor out, Tensor att, Tensor qkv, int n_head) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"out", out}, {"att", att}, {"qkv", qkv}});
  const std::int64_t C = attention_channels(check, qkv, n_head);
  const std::int64_t B = qkv.size(0), T = qkv.size(1);
  check.shape({"out", out}, {B, T, C});
  check.shape({"att", att}, {B, n_head, T, T});
  check.dtype(qkv.dtype(), {{"out", out}, {"att", att}});
  run_on_device(device, qkv.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, attention_forward, out.as<S>(), att.as<S>(), qkv.as<S>(), B, T, C, n_head);
  });
}

void attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor att, int n_head) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"dqkv", dqkv}, {"dout", dout}, {"qkv", qkv}, {"att", att}});
  const std::int64_t C = attention_channels(check, qkv, n_head);
  const std::int64_t B = qkv.size(0), T = qkv.size(1);
  check.same_shape({"dqkv", dqkv}, {"qkv", qkv});
  check.shape({"dout", dout}, {B, T, C});
  check.shape({"att", att}, {B, n_head, T, T});
  check.dtype(qkv.dtype(), {{"dqkv", dqkv}, {"dout", dout}, {"att", att}});
  run_on_device(device, qkv.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, attention_backward, dqkv.as<S>(), dout.as<S>(), qkv.as<S>(), att.as<S>(), B, T, C, n_head);
  });
}

void flash_attention_forward(Tensor out, Tensor lse, Tensor qkv, int n_head) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"out", out}, {"lse", lse}, {"qkv", qkv}});
  const std::int64_t C = attention_channels(check, qkv, n_head);
  const std::int64_t B = qkv.size(0), T = qkv.size(1);
  check.shape({"out", out}, {B, T, C});
  check.element_count({"lse", lse}, B * n_head * T);
  check.dtype(qkv.dtype(), {{"out", out}});
  check.dtype(compute_dtype(qkv.dtype()), {{"lse", lse}});
  run_on_device(device, qkv.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, flash_attention_forward, out.as<S>(), lse.as<ComputeType<S>>(), qkv.as<S>(), B, T, C,
                        n_head);
  });
}

void flash_attention_backward(Tensor dqkv, Tensor dout, Tensor qkv, Tensor out, Tensor lse, int n_head) {
  const ArgumentChecks check(__func__);
  const Device device =
      check.same_device({{"dqkv", dqkv}, {"dout", dout}, {"qkv", qkv}, {"out", out}, {"lse", lse}});
  const std::int64_t C = attention_channels(check, qkv, n_head);
  const std::int64_t B = qkv.size(0), T = qkv.size(1);
  check.same_shape({"dqkv", dqkv}, {"qkv", qkv});
  check.shape({"dout", dout}, {B, T, C});
  check.shape({"out", out}, {B, T, C});
  check.element_count({"lse", lse}, B * n_head * T);
  check.dtype(qkv.dtype(), {{"dqkv", dqkv}, {"dout", dout}, {"out", out}});
  check.dtype(compute_dtype(qkv.dtype()), {{"lse", lse}});
  run_on_device(device, qkv.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, flash_attention_backward, dqkv.as<S>(), dout.as<S>(), qkv.as<S>(), out.as<S>(),
                        lse.as<ComputeType<S>>(), B, T, C, n_head);
  });
}

void gelu_forward(Tensor out, Tensor inp) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"out", out}, {"inp", inp}});
  check.same_shape({"out", out}, {"inp", inp});
  check.dtype(inp.dtype(), {{"out", out}});
  run_on_device(device, inp.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, gelu_forward, out.as<S>(), inp.as<S>(), inp.numel());
  });
}

void gelu_backward(Tensor dinp, Tensor inp, Tensor dout) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"dinp", dinp}, {"inp", inp}, {"dout", dout}});
  check.same_shape({"dinp", dinp}, {"inp", inp});
  check.same_shape({"dout", dout}, {"inp", inp});
  check.dtype(inp.dtype(), {{"dinp", dinp}, {"dout", dout}});
  run_on_device(device, inp.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, gelu_backward, dinp.as<S>(), inp.as<S>(), dout.as<S>(), inp.numel());
  });
}

namespace {

// Dropout's two ops check the same things and pass the same mask parameters.
template <class Call>
void run_dropout(const char* op, Argument destination, Argument source, double probability, Call call) {
  const ArgumentChecks check(op);
  const Device device = check.same_device({destination, source});
  check.same_shape(destination, source);
  check.dtype(source.tensor.dtype(), {destination});
  check.require(probability >= 0 && probability < 1, "probability ", probability, " must lie in [0, 1)");
  run_on_device(device, source.tensor.dtype(), op, [&](auto element, auto backend) {
    call(element, backend, dropout_threshold(probability), 1.0 / (1.0 - probability), source.tensor.numel());
  });
}

}  // namespace

void dropout_forward(Tensor out, Tensor inp, double probability, std::uint64_t seed) {
  run_dropout(__func__, {"out", out}, {"inp", inp}, probability,
              [&](auto element, auto backend, std::uint64_t threshold, double keep_scale, std::int64_t count) {
                using S = decltype(element);
                LADDER_BACKEND_CALL(backend, dropout_forward, out.as<S>(), inp.as<S>(), threshold, keep_scale, seed, count);
              });
}

void dropout_backward(Tensor dinp, Tensor dout, double probability, std::uint64_t seed) {
  run_dropout(__func__, {"dinp", dinp}, {"dout", dout}, probability,
              [&](auto element, auto backend, std::uint64_t threshold, double keep_scale, std::int64_t count) {
                using S = decltype(element);
                LADDER_BACKEND_CALL(backend, dropout_backward, dinp.as<S>(), dout.as<S>(), threshold, keep_scale, seed, count);
              });
}

void residual_forward(Tensor out, Tensor a, Tensor b) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"out", out}, {"a", a}, {"b", b}});
  check.same_shape({"out", out}, {"a", a});
  check.same_shape({"b", b}, {"a", a});
  check.dtype(a.dtype(), {{"out", out}, {"b", b}});
  run_on_device(device, a.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, residual_forward, out.as<S>(), a.as<S>(), b.as<S>(), a.numel());
  });
}

void residual_backward(Tensor da, Tensor db, Tensor dout) {
  const ArgumentChecks check(__func__);
  const Device device = check.same_device({{"da", da}, {"db", db}, {"dout", dout}});
  check.same_shape({"da", da}, {"dout", dout});
  check.same_shape({"db", db}, {"dout", dout});
  check.dtype(dout.dtype(), {{"da", da}, {"db", db}});
  run_on_device(device, dout.dtype(), __func__, [&](auto element, auto backend) {
    using S = decltype(element);
    LADDER_BACKEND_CALL(backend, residual_backward, da.as<S>(), db.as<S>(), dout.as<S>(), dout.numel());
  });
}

}  // namespace ladder::ops
