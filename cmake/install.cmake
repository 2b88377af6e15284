# The public API and the installable package (included from the top-level CMakeLists.txt after
# the `fusiongraph` and `graph-runner` targets are defined).
#
#   cmake --install build --prefix /opt/fusiongraph
#     include/fusiongraph/fusiongraph.hpp, extension.hpp, data.hpp   the public headers
#     include/fusiongraph/{framework,kernels,engine}/... the internal headers they include
#     lib/libfusiongraph.a                                 the library (static by default)
#     lib/cmake/FusionGraph/                               FusionGraphConfig.cmake, version, targets
#     bin/graph-runner
#
# A consumer: find_package(FusionGraph REQUIRED) + target_link_libraries(app FusionGraph::fusiongraph)
include(GNUInstallDirs)
include(CMakePackageConfigHelpers)

# <fusiongraph/fusiongraph.hpp> from include/; the internal headers keep their "framework/..."
# , "kernels/..." and "engine/..." paths, installed under include/fusiongraph/.
target_include_directories(fusiongraph PUBLIC
  $<BUILD_INTERFACE:${PROJECT_SOURCE_DIR}/include>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}>
  $<INSTALL_INTERFACE:${CMAKE_INSTALL_INCLUDEDIR}/fusiongraph>)
set_source_files_properties(${PROJECT_SOURCE_DIR}/engine/session.cpp PROPERTIES
  COMPILE_DEFINITIONS "FG_VERSION=\"${PROJECT_VERSION}\"")
if(FG_SANITIZE)
  # an instrumented static library needs the sanitizer runtimes wherever it is linked
  target_link_options(fusiongraph INTERFACE -fsanitize=address,undefined)
endif()

# The public headers and every internal header they include (checked by the install test,
# which builds examples/custom_fusion against the installed tree only).
set(FG_INSTALL_HEADERS
  framework/compiler.hpp framework/error.hpp framework/graph_def.hpp framework/op.hpp
  framework/registry.hpp framework/shape.hpp framework/summary.hpp
  kernels/kernel.hpp kernels/precision.hpp engine/file_io.hpp engine/model.hpp engine/npy.hpp
  kernels/tensor.hpp kernels/int8_weights.hpp engine/weights.hpp
  kernels/onednn/onednn.hpp kernels/training_kernel.hpp framework/training_config.hpp
  engine/training/progress_bar.hpp engine/training/training_log.hpp
  engine/import/keras_import.hpp engine/import/reference.hpp
  framework/preprocessing.hpp engine/data/preprocessors.hpp engine/data/table.hpp
  engine/data/text_vectorizer.hpp engine/quantization/calibration.hpp
  engine/quantization/quantizer.hpp)
install(FILES include/fusiongraph/fusiongraph.hpp include/fusiongraph/extension.hpp
  include/fusiongraph/training.hpp include/fusiongraph/import.hpp include/fusiongraph/data.hpp
  include/fusiongraph/quantization.hpp
  DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fusiongraph)
foreach(header ${FG_INSTALL_HEADERS})
  get_filename_component(dir ${header} DIRECTORY)
  install(FILES ${header} DESTINATION ${CMAKE_INSTALL_INCLUDEDIR}/fusiongraph/${dir})
endforeach()

install(TARGETS fusiongraph EXPORT FusionGraphTargets
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR}
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})
if(BUILD_SHARED_LIBS)
  # the installed graph-runner finds the installed libfusiongraph.so
  set_target_properties(graph-runner PROPERTIES INSTALL_RPATH "$ORIGIN/../${CMAKE_INSTALL_LIBDIR}")
endif()
install(TARGETS graph-runner RUNTIME DESTINATION ${CMAKE_INSTALL_BINDIR})

set(FG_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/FusionGraph)
get_target_property(FG_LIBRARY_TYPE fusiongraph TYPE)
install(EXPORT FusionGraphTargets NAMESPACE FusionGraph:: DESTINATION ${FG_CMAKE_DIR})
configure_package_config_file(${PROJECT_SOURCE_DIR}/cmake/FusionGraphConfig.cmake.in
  ${PROJECT_BINARY_DIR}/FusionGraphConfig.cmake INSTALL_DESTINATION ${FG_CMAKE_DIR})
# 0.x: a minor version may change the API
write_basic_package_version_file(${PROJECT_BINARY_DIR}/FusionGraphConfigVersion.cmake
  COMPATIBILITY SameMinorVersion)
install(FILES ${PROJECT_BINARY_DIR}/FusionGraphConfig.cmake
  ${PROJECT_BINARY_DIR}/FusionGraphConfigVersion.cmake DESTINATION ${FG_CMAKE_DIR})

# tests/api/test_install.cpp installs this build tree into a temporary prefix and builds
# examples/custom_fusion against it; only that file knows the paths (ccache keeps hitting for
# the others).
if(FG_BUILD_TESTS)
  set_source_files_properties(${PROJECT_SOURCE_DIR}/tests/api/test_install.cpp PROPERTIES
    COMPILE_DEFINITIONS
    "FG_SOURCE_DIR=\"${PROJECT_SOURCE_DIR}\";FG_BINARY_DIR=\"${PROJECT_BINARY_DIR}\";FG_CMAKE_COMMAND=\"${CMAKE_COMMAND}\";FG_BUILD_TYPE=\"${CMAKE_BUILD_TYPE}\";FG_CXX_COMPILER=\"${CMAKE_CXX_COMPILER}\";FG_CCACHE_PROGRAM=\"${FG_CCACHE}\"")
endif()
