// The update rules of keras/src/optimizers/{sgd,adam,adamw,rmsprop,adagrad}.py and the clipping
// and weight decay of base_optimizer.py, in float as Keras computes them (per-step scalars in
// double, then rounded once).
#include "engine/training/optimizer.hpp"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <regex>

namespace fg {

namespace {

constexpr int64_t kParallelWork = 1 << 15;

// Keras variable names of each optimizer's state (add_optimizer_variables(var_list, "<name>")).
std::vector<std::string> slot_kinds(const OptimizerSpec& s) {
  switch (s.kind) {
    case OptimizerKind::sgd:
      return s.momentum != 0 ? std::vector<std::string>{"momentum"} : std::vector<std::string>{};
    case OptimizerKind::adam:
    case OptimizerKind::adamw:
      return s.amsgrad ? std::vector<std::string>{"momentum", "velocity", "velocity_hat"}
                       : std::vector<std::string>{"momentum", "velocity"};
    case OptimizerKind::rmsprop: {
      std::vector<std::string> kinds = {"velocity"};
      if (s.momentum > 0) kinds.push_back("momentum");
      if (s.centered) kinds.push_back("average_gradient");
      return kinds;
    }
    case OptimizerKind::adagrad:
      return {"accumulator"};
  }
  return {};
}

double squared_norm(const float* g, size_t n) {
  double sum = 0.0;
  const int64_t count = static_cast<int64_t>(n);
#pragma omp parallel for reduction(+ : sum) if (count > kParallelWork)
  for (int64_t i = 0; i < count; ++i) sum += static_cast<double>(g[i]) * g[i];
  return sum;
}

void scale(float* g, size_t n, float factor) {
  const int64_t count = static_cast<int64_t>(n);
#pragma omp parallel for if (count > kParallelWork)
  for (int64_t i = 0; i < count; ++i) g[i] *= factor;
}

}  // namespace

Optimizer::Optimizer(OptimizerSpec spec) : spec_(std::move(spec)), schedule_(spec_.learning_rate) {
  slot_names_ = slot_kinds(spec_);
}

bool Optimizer::decays(const std::string& name) const {
  if (!spec_.weight_decay) return false;
  const std::string param = name.substr(name.find('.') + 1);
  for (const auto& pattern : spec_.exclude_from_weight_decay) {
    const std::regex re(pattern);
    if (std::regex_search(param, re) || std::regex_search(name, re)) return false;
  }
  return true;
}

void Optimizer::build(const std::vector<Parameter>& params) {
  names_.clear();
  sizes_.clear();
  decay_.clear();
  for (const auto& p : params) {
    names_.push_back(p.name);
    sizes_.push_back(p.size);
    decay_.push_back(decays(p.name));
  }
  slot_data_.assign(slot_names_.size(), {});
  for (size_t k = 0; k < slot_names_.size(); ++k) {
    // adagrad.py: the accumulators start at initial_accumulator_value; every other slot at 0
    const float initial = slot_names_[k] == "accumulator"
                              ? static_cast<float>(spec_.initial_accumulator_value)
                              : 0.0f;
    for (size_t size : sizes_) slot_data_[k].emplace_back(size, initial);
  }
  built_ = true;
}

void Optimizer::clip(std::vector<Parameter>& params) const {
  if (spec_.clipnorm) {  // base_optimizer.py _clip_by_norm: g * c / max(norm, c)
    const double c = *spec_.clipnorm;
    for (auto& p : params) {
      const double norm = std::sqrt(squared_norm(p.gradient, p.size));
      if (norm > c) scale(p.gradient, p.size, static_cast<float>(c / norm));
    }
  } else if (spec_.global_clipnorm) {  // clip_by_global_norm: g * c * min(1 / norm, 1 / c)
    const double c = *spec_.global_clipnorm;
    double sum = 0.0;
    for (const auto& p : params) sum += squared_norm(p.gradient, p.size);
    const double norm = std::sqrt(sum);
    if (!std::isfinite(norm)) {  // Keras: scale + (norm - norm) makes every gradient NaN
      for (auto& p : params) std::fill(p.gradient, p.gradient + p.size, std::nanf(""));
    } else if (norm > c) {
      for (auto& p : params) scale(p.gradient, p.size, static_cast<float>(c / norm));
    }
  } else if (spec_.clipvalue) {
    const float c = static_cast<float>(*spec_.clipvalue);
    for (auto& p : params)
      for (size_t i = 0; i < p.size; ++i) p.gradient[i] = std::min(std::max(p.gradient[i], -c), c);
  }
}

void Optimizer::step(std::vector<Parameter>& params) {
  if (!built_) build(params);
  if (params.size() != names_.size())
    throw Error(fmt::format("the optimizer was built for {} parameters, this step passes {}",
                            names_.size(), params.size()));
  for (size_t i = 0; i < params.size(); ++i)
    if (params[i].name != names_[i] || params[i].size != sizes_[i])
      throw Error(fmt::format("optimizer parameter {} is '{}' of {} values, this step passes '{}' "
                              "of {}",
                              i, names_[i], sizes_[i], params[i].name, params[i].size))
          .tensor(params[i].name);
  if (hook_) hook_(params);
  clip(params);
  const double lr = learning_rate();
  if (spec_.weight_decay) {  // base_optimizer.py _apply_weight_decay
    const float factor = static_cast<float>(*spec_.weight_decay * lr);
    for (size_t i = 0; i < params.size(); ++i)
      if (decay_[i])
        for (size_t j = 0; j < params[i].size; ++j)
          params[i].value[j] = params[i].value[j] - params[i].value[j] * factor;
  }
  for (size_t i = 0; i < params.size(); ++i) update(i, params[i], lr);
  ++iterations_;
}

void Optimizer::update(size_t index, Parameter& p, double lr_double) {
  const int64_t n = static_cast<int64_t>(p.size);
  float* w = p.value;
  const float* g = p.gradient;
  const float lr = static_cast<float>(lr_double);
  auto slot = [&](size_t kind) { return slot_data_[kind][index].data(); };
  switch (spec_.kind) {
    case OptimizerKind::sgd: {
      if (spec_.momentum == 0) {
#pragma omp parallel for if (n > kParallelWork)
        for (int64_t i = 0; i < n; ++i) w[i] -= g[i] * lr;
        break;
      }
      float* m = slot(0);
      const float mu = static_cast<float>(spec_.momentum);
      const bool nesterov = spec_.nesterov;
#pragma omp parallel for if (n > kParallelWork)
      for (int64_t i = 0; i < n; ++i) {
        m[i] = m[i] * mu - g[i] * lr;
        w[i] += nesterov ? m[i] * mu - g[i] * lr : m[i];
      }
      break;
    }
    case OptimizerKind::adam:
    case OptimizerKind::adamw: {
      const double t = static_cast<double>(iterations_ + 1);
      const float alpha =
          static_cast<float>(lr_double * std::sqrt(1.0 - std::pow(spec_.beta_2, t)) /
                             (1.0 - std::pow(spec_.beta_1, t)));
      const float one_minus_b1 = static_cast<float>(1.0 - spec_.beta_1);
      const float one_minus_b2 = static_cast<float>(1.0 - spec_.beta_2);
      const float eps = static_cast<float>(spec_.epsilon);
      float* m = slot(0);
      float* v = slot(1);
      float* v_hat = spec_.amsgrad ? slot(2) : nullptr;
      if (v_hat != nullptr) {
#pragma omp parallel for if (n > kParallelWork)
        for (int64_t i = 0; i < n; ++i) {
          m[i] += (g[i] - m[i]) * one_minus_b1;
          v[i] += (g[i] * g[i] - v[i]) * one_minus_b2;
          v_hat[i] = std::max(v_hat[i], v[i]);
          w[i] -= (m[i] * alpha) / (std::sqrt(v_hat[i]) + eps);
        }
        break;
      }
      // The hot loop of a training step (every weight, e.g. 44 M for the reference graph): the
      // same arithmetic, vectorised (distinct buffers, no branch).
#pragma omp parallel for simd if (n > kParallelWork)
      for (int64_t i = 0; i < n; ++i) {
        const float gi = g[i];
        const float mi = m[i] + (gi - m[i]) * one_minus_b1;
        const float vi = v[i] + (gi * gi - v[i]) * one_minus_b2;
        m[i] = mi;
        v[i] = vi;
        w[i] -= (mi * alpha) / (std::sqrt(vi) + eps);
      }
      break;
    }
    case OptimizerKind::rmsprop: {
      const float rho = static_cast<float>(spec_.rho);
      const float eps = static_cast<float>(spec_.epsilon);
      const float mu = static_cast<float>(spec_.momentum);
      float* v = slot(0);
      float* m = spec_.momentum > 0 ? slot(1) : nullptr;
      float* a = spec_.centered ? slot(spec_.momentum > 0 ? 2 : 1) : nullptr;
#pragma omp parallel for if (n > kParallelWork)
      for (int64_t i = 0; i < n; ++i) {
        v[i] = rho * v[i] + (1 - rho) * (g[i] * g[i]);
        float d = v[i] + eps;
        if (a) {
          a[i] = rho * a[i] + (1 - rho) * g[i];
          d = v[i] - a[i] * a[i] + eps;
        }
        const float increment = (lr * g[i]) / std::sqrt(d);
        if (m) {
          m[i] = mu * m[i] + increment;
          w[i] -= m[i];
        } else {
          w[i] -= increment;
        }
      }
      break;
    }
    case OptimizerKind::adagrad: {
      const float eps = static_cast<float>(spec_.epsilon);
      float* acc = slot(0);
#pragma omp parallel for if (n > kParallelWork)
      for (int64_t i = 0; i < n; ++i) {
        acc[i] += g[i] * g[i];
        w[i] -= (lr * g[i]) / std::sqrt(acc[i] + eps);
      }
      break;
    }
  }
}

std::vector<OptimizerSlot> Optimizer::slots() {
  std::vector<OptimizerSlot> out;
  const std::string prefix = spec_.name + "/";
  for (size_t k = 0; k < slot_names_.size(); ++k)
    for (size_t i = 0; i < names_.size(); ++i)
      out.push_back({names_[i], prefix + slot_names_[k], slot_data_[k][i].data(), sizes_[i]});
  return out;
}

}  // namespace fg
