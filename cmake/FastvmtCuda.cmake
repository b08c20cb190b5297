# libfastvmt_cuda: built whenever a CUDA compiler is found (FASTVMT_CUDA=AUTO),
# for sm_80 and sm_90, with the CUDA runtime linked statically so that the
# library needs only a driver at run time. FASTVMT_CUDA=ON makes a missing
# nvcc an error, OFF skips the build.
include(CheckLanguage)
set(FASTVMT_CUDA "AUTO" CACHE STRING "Build libfastvmt_cuda: AUTO, ON or OFF")
set(FASTVMT_CUDA_ARCHITECTURES "80;90" CACHE STRING "CUDA architectures of libfastvmt_cuda")

if(NOT FASTVMT_CUDA STREQUAL "OFF")
  check_language(CUDA)
  if(CMAKE_CUDA_COMPILER)
    enable_language(CUDA)
  elseif(FASTVMT_CUDA STREQUAL "ON")
    message(FATAL_ERROR "FASTVMT_CUDA=ON but no CUDA compiler was found (set CMAKE_CUDA_COMPILER)")
  else()
    message(STATUS "fastvmt: no CUDA compiler found, libfastvmt_cuda is not built")
  endif()
endif()

function(fastvmt_add_cuda_library target)
  if(NOT CMAKE_CUDA_COMPILER)
    return()
  endif()
  cmake_parse_arguments(ARG "" "" "SOURCES" ${ARGN})
  add_library(${target} SHARED ${ARG_SOURCES} $<TARGET_OBJECTS:fastvmt_common>)
  set_target_properties(${target} PROPERTIES
    CUDA_ARCHITECTURES "${FASTVMT_CUDA_ARCHITECTURES}"
    CUDA_RUNTIME_LIBRARY Static
    # C++17: CMake 3.25 knows no CUDA20 dialect for nvcc (and would otherwise take
    # CXX_STANDARD 20 from FastvmtFlags.cmake); the .cu sources need nothing newer.
    CUDA_STANDARD 17
    CUDA_STANDARD_REQUIRED ON)
  target_include_directories(${target} PRIVATE
    "${CMAKE_CURRENT_SOURCE_DIR}/include" "${CMAKE_CURRENT_SOURCE_DIR}/common"
    "${CMAKE_CURRENT_SOURCE_DIR}/cuda")
  # -Xptxas -v prints registers and spills per kernel into the build log.
  target_compile_options(${target} PRIVATE
    $<$<COMPILE_LANGUAGE:CUDA>:-O3 -Xptxas=-v -Xcompiler=-fvisibility=hidden>)
endfunction()
