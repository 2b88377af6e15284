// The arithmetic precision a plan asks its ops for (CompileOptions::precision): f32 everywhere,
// or bf16 in the ops that have bf16 kernels (dense, conv1d, conv2d: bf16 inputs and weights, f32
// accumulation and outputs). An op that cannot run in the precision asked for runs in f32 and
// says so in KernelBuild::precision. int8 comes later.
#pragma once

#include <string>
#include <vector>

namespace fg {

enum class Precision { f32, bf16 };

// "f32", "bf16".
const char* precision_name(Precision precision);
// Every precision's name, in enum order (for messages and --help).
std::vector<std::string> precision_names();
// "f32" / "bf16" -> the precision; anything else throws fg::Error listing the choices.
Precision parse_precision(const std::string& name);

}  // namespace fg
