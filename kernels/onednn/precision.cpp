// The CPU's bf16 and int8 (VNNI) support as oneDNN 2.6 sees it, and descs in another data type.
#include <string>

#include "kernels/onednn/onednn.hpp"

namespace fg::onednn {

std::string cpu_isa_name() {
  using isa = dnnl::cpu_isa;
  switch (dnnl::get_effective_cpu_isa()) {
    case isa::sse41:
      return "sse41";
    case isa::avx:
      return "avx";
    case isa::avx2:
      return "avx2";
    case isa::avx2_vnni:
      return "avx2_vnni";
    case isa::avx512_mic:
      return "avx512_mic";
    case isa::avx512_mic_4ops:
      return "avx512_mic_4ops";
    case isa::avx512_core:
      return "avx512_core";
    case isa::avx512_core_vnni:
      return "avx512_core_vnni";
    case isa::avx512_core_bf16:
      return "avx512_core_bf16";
    case isa::avx512_core_amx:
      return "avx512_core_amx";
    case isa::all:
      return "all";
  }
  return "unknown";
}

bool native_bf16_isa() {
  // The cpu_isa values are bit sets, each containing the ones it extends.
  const auto bf16 = static_cast<unsigned>(dnnl::cpu_isa::avx512_core_bf16);
  return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & bf16) == bf16;
}

std::string no_native_bf16_reason() {
  return "no native bf16 on " + cpu_isa_name();
}

bool native_int8_isa() {
  const auto has = [](dnnl::cpu_isa want) {
    const auto bits = static_cast<unsigned>(want);
    return (static_cast<unsigned>(dnnl::get_effective_cpu_isa()) & bits) == bits;
  };
  return has(dnnl::cpu_isa::avx512_core_vnni) || has(dnnl::cpu_isa::avx2_vnni);
}

std::string no_native_int8_reason() {
  return "no VNNI on " + cpu_isa_name();
}

memory::desc with_data_type(const memory::desc& desc, memory::data_type type) {
  dnnl_memory_desc_t data = desc.data;
  data.data_type = static_cast<dnnl_data_type_t>(type);
  return memory::desc(data);
}

bool is_reference_impl(const dnnl::primitive_desc_base& pd) {
  return std::string(pd.impl_info_str()).rfind("ref", 0) == 0;
}

}  // namespace fg::onednn
