# Compiler settings shared by every native target.
set(CMAKE_CXX_STANDARD 20)
set(CMAKE_CXX_STANDARD_REQUIRED ON)
set(CMAKE_CXX_EXTENSIONS OFF)
# Only the fvmt_* entry points (FVMT_API) are exported.
set(CMAKE_CXX_VISIBILITY_PRESET hidden)
set(CMAKE_VISIBILITY_INLINES_HIDDEN ON)
if(NOT CMAKE_BUILD_TYPE AND NOT CMAKE_CONFIGURATION_TYPES)
  set(CMAKE_BUILD_TYPE Release CACHE STRING "Build type" FORCE)
endif()

# The CPU kernels are written for AVX2 + FMA (x86-64-v3: every x86 server
# since 2015). fvmt_runtime_check() refuses to run on a CPU without them, so a
# wrong machine gets an error instead of SIGILL. "native" tunes for this CPU.
set(FASTVMT_CPU_ARCH "x86-64-v3" CACHE STRING "-march for libfastvmt_cpu (empty: compiler default)")

function(fastvmt_warnings target)
  target_compile_options(${target} PRIVATE $<$<COMPILE_LANGUAGE:CXX>:-Wall -Wextra -Wno-unused-parameter>)
endfunction()

function(fastvmt_cpu_arch target)
  if(FASTVMT_CPU_ARCH AND CMAKE_SYSTEM_PROCESSOR MATCHES "x86_64|AMD64")
    target_compile_options(${target} PRIVATE -march=${FASTVMT_CPU_ARCH} -O3)
  endif()
endfunction()
