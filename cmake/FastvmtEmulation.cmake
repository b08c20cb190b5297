# libfastvmt_cudaemu: the CUDA sources compiled by the C++ compiler with
# native/emu/cuda_emu.h, so every kernel runs (and is tested) without a GPU.
# A .cu file is CUDA to CMake in this directory, so each one is reached through
# a generated one-line .cpp that includes it.
function(fastvmt_add_emulated_cuda_library target)
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  set(wrappers "")
  foreach(cu ${ARG_SOURCES})
    get_filename_component(stem "${cu}" NAME_WE)
    set(wrapper "${CMAKE_CURRENT_BINARY_DIR}/emu/${stem}.emu.cpp")
    file(CONFIGURE OUTPUT "${wrapper}" CONTENT "#include \"${cu}\"\n")
    list(APPEND wrappers "${wrapper}")
  endforeach()
  add_library(${target} SHARED ${wrappers} $<TARGET_OBJECTS:fastvmt_common>)
  target_compile_definitions(${target} PRIVATE FVMT_CUDA_EMULATION)
  target_include_directories(${target} PRIVATE
    "${CMAKE_CURRENT_SOURCE_DIR}/include" "${CMAKE_CURRENT_SOURCE_DIR}/common"
    "${CMAKE_CURRENT_SOURCE_DIR}/cuda" "${CMAKE_CURRENT_SOURCE_DIR}/emu")
  target_compile_options(${target} PRIVATE -O2)
  target_link_libraries(${target} PRIVATE Threads::Threads)
  fastvmt_warnings(${target})
endfunction()
