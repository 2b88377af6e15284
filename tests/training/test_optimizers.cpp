// Each optimizer against the naive Keras rule (tests/reference/keras_training.hpp) over several
// steps with a new gradient each step, on sizes 7, 13, 127 and one large enough for threads;
// clipping, decoupled weight decay with exclusions, schedules inside the optimizer, slot names,
// resume from slots, and the gradient hook.
#include <doctest/doctest.h>

#include <cmath>
#include <vector>

#include "engine/training/optimizer.hpp"
#include "tests/reference/keras_training.hpp"

namespace ref = fg::reference;

namespace {

fg::OptimizerSpec optimizer(fg::OptimizerKind kind, double lr) {
  fg::OptimizerSpec s;
  s.kind = kind;
  s.name = fg::optimizer_kind_name(kind);
  s.learning_rate.value = lr;
  return s;
}

void check_weights(const std::vector<float>& got, const std::vector<double>& want) {
  REQUIRE(got.size() == want.size());
  int bad = 0;
  for (size_t i = 0; i < got.size() && bad < 5; ++i)
    if (!(std::abs(got[i] - want[i]) <= 2e-6 + 2e-5 * std::abs(want[i]))) {
      ++bad;
      FAIL_CHECK("w[" << i << "]: got " << got[i] << ", want " << want[i]);
    }
}

using NaiveStep = std::function<void(ref::NaiveState&, const std::vector<double>&)>;

// Five steps of `spec` on one parameter of `n` values against the naive rule.
void check_steps(const fg::OptimizerSpec& spec, size_t n, const NaiveStep& naive) {
  INFO(spec.name << " on " << n << " values");
  std::vector<float> w = ref::random_values(n, 100, -1.f, 1.f);
  ref::NaiveState state;
  state.w.assign(w.begin(), w.end());
  fg::Optimizer opt(spec);
  for (uint32_t step = 0; step < 5; ++step) {
    std::vector<float> g = ref::random_values(n, 200 + step, -0.5f, 0.5f);
    std::vector<double> gd(g.begin(), g.end());
    std::vector<fg::Parameter> params = {{"dense_1.kernel", w.data(), g.data(), n}};
    opt.step(params);
    naive(state, gd);
  }
  CHECK(opt.iterations() == 5);
  check_weights(w, state.w);
}

}  // namespace

TEST_CASE("optimizers: each update rule against Keras's formula over five steps") {
  using K = fg::OptimizerKind;
  for (size_t n : {size_t(7), size_t(13), size_t(127), size_t(40013)}) {
    auto adam = optimizer(K::adam, 0.01);
    check_steps(adam, n,
                [](auto& s, auto& g) { ref::naive_adam(s, g, 0.01, 0.9, 0.999, 1e-7, false); });
    adam.amsgrad = true;
    adam.beta_1 = 0.8;
    adam.beta_2 = 0.95;
    check_steps(adam, n,
                [](auto& s, auto& g) { ref::naive_adam(s, g, 0.01, 0.8, 0.95, 1e-7, true); });
    auto adamw = optimizer(K::adamw, 0.01);
    adamw.weight_decay = 0.004;
    check_steps(adamw, n, [](auto& s, auto& g) {
      ref::naive_adam(s, g, 0.01, 0.9, 0.999, 1e-7, false, 0.004);
    });
    auto sgd = optimizer(K::sgd, 0.05);
    check_steps(sgd, n, [](auto& s, auto& g) { ref::naive_sgd(s, g, 0.05, 0.0, false); });
    sgd.momentum = 0.9;
    check_steps(sgd, n, [](auto& s, auto& g) { ref::naive_sgd(s, g, 0.05, 0.9, false); });
    sgd.nesterov = true;
    check_steps(sgd, n, [](auto& s, auto& g) { ref::naive_sgd(s, g, 0.05, 0.9, true); });
    auto rms = optimizer(K::rmsprop, 0.01);
    check_steps(rms, n,
                [](auto& s, auto& g) { ref::naive_rmsprop(s, g, 0.01, 0.9, 0.0, 1e-7, false); });
    rms.momentum = 0.5;
    rms.centered = true;
    rms.rho = 0.8;
    check_steps(rms, n,
                [](auto& s, auto& g) { ref::naive_rmsprop(s, g, 0.01, 0.8, 0.5, 1e-7, true); });
    rms.momentum = 0.0;
    check_steps(rms, n,
                [](auto& s, auto& g) { ref::naive_rmsprop(s, g, 0.01, 0.8, 0.0, 1e-7, true); });
    auto ada = optimizer(K::adagrad, 0.1);
    check_steps(ada, n, [](auto& s, auto& g) { ref::naive_adagrad(s, g, 0.1, 0.1, 1e-7); });
  }
}

TEST_CASE("optimizers: Adam adds epsilon to the uncorrected sqrt(v)") {
  // one step from zero state with g = 1e-4 and a large epsilon: Keras gives
  // alpha * m / (sqrt(v) + eps) with m = 1e-5, v = 1e-11, alpha = lr sqrt(0.001) / 0.1;
  // adding eps to the bias-corrected sqrt(v_hat) (PyTorch's form) would give another number.
  auto spec = optimizer(fg::OptimizerKind::adam, 1.0);
  spec.epsilon = 1e-3;
  std::vector<float> w = {0.f}, g = {1e-4f};
  std::vector<fg::Parameter> params = {{"d.kernel", w.data(), g.data(), 1}};
  fg::Optimizer opt(spec);
  opt.step(params);
  const double alpha = std::sqrt(1 - 0.999) / (1 - 0.9);
  const double keras = -alpha * 1e-5 / (std::sqrt(1e-11) + 1e-3);
  const double torch = -1.0 * (1e-5 / 0.1) / (std::sqrt(1e-11 / 0.001) + 1e-3);
  CHECK(w[0] == doctest::Approx(keras).epsilon(1e-5));
  CHECK(std::abs(w[0] - torch) > 1e-4);
}

TEST_CASE("optimizers: clipping by norm per tensor, by global norm, by value") {
  // two tensors: the first has norm 5 (3, 4), the second norm 0.5
  auto run = [](fg::OptimizerSpec spec) {
    std::vector<float> a = {0.f, 0.f}, b = {0.f, 0.f};
    std::vector<float> ga = {3.f, 4.f}, gb = {0.3f, 0.4f};
    std::vector<fg::Parameter> params = {{"x.kernel", a.data(), ga.data(), 2},
                                         {"x.bias", b.data(), gb.data(), 2}};
    fg::Optimizer opt(spec);
    opt.step(params);  // sgd lr 1: w = -clipped g
    return std::vector<float>{-a[0], -a[1], -b[0], -b[1]};
  };
  auto spec = optimizer(fg::OptimizerKind::sgd, 1.0);
  spec.clipnorm = 1.0;  // each tensor to norm <= 1: g * 1 / max(|g|, 1)
  auto got = run(spec);
  CHECK(got[0] == doctest::Approx(0.6));
  CHECK(got[1] == doctest::Approx(0.8));
  CHECK(got[2] == doctest::Approx(0.3));
  CHECK(got[3] == doctest::Approx(0.4));
  spec.clipnorm.reset();
  spec.global_clipnorm = 1.0;  // global norm sqrt(25 + 0.25): every gradient * 1 / that
  got = run(spec);
  const double global = std::sqrt(25.25);
  CHECK(got[0] == doctest::Approx(3 / global));
  CHECK(got[3] == doctest::Approx(0.4 / global));
  spec.global_clipnorm.reset();
  spec.clipvalue = 0.35;
  got = run(spec);
  CHECK(got[0] == doctest::Approx(0.35));
  CHECK(got[2] == doctest::Approx(0.3));
  CHECK(got[3] == doctest::Approx(0.35));
}

TEST_CASE("optimizers: weight decay reaches biases unless excluded, before the update") {
  auto spec = optimizer(fg::OptimizerKind::sgd, 0.5);
  spec.weight_decay = 0.1;
  std::vector<float> k = {2.f, -4.f}, b = {1.f}, e = {3.f};
  std::vector<float> gk = {0.f, 0.f}, gb = {0.f}, ge = {1.f};
  std::vector<fg::Parameter> params = {{"dense.kernel", k.data(), gk.data(), 2},
                                       {"dense.bias", b.data(), gb.data(), 1},
                                       {"embed.embeddings", e.data(), ge.data(), 1}};
  fg::Optimizer opt(spec);
  opt.step(params);
  // w -= w * wd * lr (factor 0.95), then the SGD step (only e has a gradient)
  CHECK(k[0] == doctest::Approx(1.9));
  CHECK(k[1] == doctest::Approx(-3.8));
  CHECK(b[0] == doctest::Approx(0.95));
  CHECK(e[0] == doctest::Approx(3 * 0.95 - 0.5));
  spec.exclude_from_weight_decay = {"bias", "^embed\\."};
  fg::Optimizer excluding(spec);
  CHECK(excluding.decays("dense.kernel"));
  CHECK_FALSE(excluding.decays("dense.bias"));
  CHECK_FALSE(excluding.decays("embed.embeddings"));
  CHECK_FALSE(fg::Optimizer(optimizer(fg::OptimizerKind::adam, 0.1)).decays("dense.kernel"));
}

TEST_CASE("optimizers: the schedule is read at the iteration count before each step") {
  auto spec = optimizer(fg::OptimizerKind::sgd, 0.0);
  spec.learning_rate.kind = fg::ScheduleKind::exponential_decay;
  spec.learning_rate.initial_learning_rate = 0.1;
  spec.learning_rate.decay_steps = 2;
  spec.learning_rate.decay_rate = 0.5;
  fg::Optimizer opt(spec);
  std::vector<float> w = {0.f}, g = {1.f};
  double expected = 0;
  for (int step = 0; step < 5; ++step) {
    CHECK(opt.learning_rate() ==
          doctest::Approx(ref::naive_exponential_decay(0.1, 2, 0.5, false, step)));
    std::vector<fg::Parameter> params = {{"d.kernel", w.data(), g.data(), 1}};
    opt.step(params);
    expected -= ref::naive_exponential_decay(0.1, 2, 0.5, false, step);
  }
  CHECK(w[0] == doctest::Approx(expected).epsilon(1e-6));
  CHECK_THROWS_AS(opt.schedule().set_constant(0.1), fg::Error);
}

TEST_CASE("optimizers: slots by name, and resuming from them equals running straight") {
  auto spec = optimizer(fg::OptimizerKind::adam, 0.01);
  spec.amsgrad = true;
  const size_t n = 13;
  auto run = [&](fg::Optimizer& opt, std::vector<float>& w, uint32_t from, uint32_t to) {
    for (uint32_t step = from; step < to; ++step) {
      auto g = ref::random_values(n, 300 + step, -1.f, 1.f);
      std::vector<fg::Parameter> params = {{"d.kernel", w.data(), g.data(), n}};
      opt.step(params);
    }
  };
  std::vector<float> straight = ref::random_values(n, 9, -1.f, 1.f), resumed = straight;
  fg::Optimizer a(spec);
  run(a, straight, 0, 5);
  fg::Optimizer first(spec);
  run(first, resumed, 0, 3);
  auto slots = first.slots();
  REQUIRE(slots.size() == 3);
  CHECK(slots[0].slot == "adam/momentum");
  CHECK(slots[1].slot == "adam/velocity");
  CHECK(slots[2].slot == "adam/velocity_hat");
  CHECK(slots[0].parameter == "d.kernel");
  CHECK(slots[0].size == n);
  fg::Optimizer second(spec);
  std::vector<float> g0(n);
  std::vector<fg::Parameter> shape_only = {{"d.kernel", resumed.data(), g0.data(), n}};
  second.build(shape_only);
  auto target = second.slots();
  for (size_t s = 0; s < slots.size(); ++s)
    std::copy(slots[s].data, slots[s].data + n, target[s].data);
  second.set_iterations(first.iterations());
  run(second, resumed, 3, 5);
  for (size_t i = 0; i < n; ++i) CHECK(resumed[i] == straight[i]);
  // other optimizers' slot names are Keras's variable names
  auto sgd = optimizer(fg::OptimizerKind::sgd, 0.1);
  sgd.momentum = 0.9;
  fg::Optimizer s(sgd);
  s.build(shape_only);
  CHECK(s.slots().at(0).slot == "sgd/momentum");
  fg::Optimizer plain(optimizer(fg::OptimizerKind::sgd, 0.1));
  plain.build(shape_only);
  CHECK(plain.slots().empty());
  fg::Optimizer ada(optimizer(fg::OptimizerKind::adagrad, 0.1));
  ada.build(shape_only);
  CHECK(ada.slots().at(0).slot == "adagrad/accumulator");
  CHECK(ada.slots().at(0).data[7] == doctest::Approx(0.1));  // initial_accumulator_value
}

TEST_CASE("optimizers: the gradient hook runs first, on complete gradients") {
  auto spec = optimizer(fg::OptimizerKind::sgd, 1.0);
  spec.clipvalue = 1.0;
  fg::Optimizer opt(spec);
  float seen = 0;
  // an all-reduce of two workers holding the same gradient: the sum, before clipping
  opt.set_gradient_hook([&](std::vector<fg::Parameter>& params) {
    seen = params[0].gradient[0];
    for (auto& p : params)
      for (size_t i = 0; i < p.size; ++i) p.gradient[i] *= 2;
  });
  std::vector<float> w = {0.f, 0.f}, g = {0.3f, 0.8f};
  std::vector<fg::Parameter> params = {{"d.kernel", w.data(), g.data(), 2}};
  opt.step(params);
  CHECK(seen == doctest::Approx(0.3f));
  CHECK(w[0] == doctest::Approx(-0.6));
  CHECK(w[1] == doctest::Approx(-1.0));  // 1.6 clipped to 1
  // a step with other parameters than the built ones is an error
  std::vector<fg::Parameter> other = {{"d.bias", w.data(), g.data(), 2}};
  CHECK_THROWS_AS(opt.step(other), fg::Error);
}
