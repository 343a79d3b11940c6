# ctest: installs this build into a fresh prefix, then configures, builds and
# runs tests/cpp/consumer against it with find_package(interpool).
#   cmake -DBUILD_DIR=... -DSOURCE_DIR=... -DWORK_DIR=... -DGENERATOR=... \
#         -DMAKE_PROGRAM=... -DCXX_COMPILER=... [-DSANITIZE=address,...] -P run.cmake
# A sanitized interpool needs a sanitized program (the runtime must load first).
# `make test-cpp-install`: the package is already installed (by docs/cpp.md's
# commands) in PREFIX, and the consumer is built with CMake's defaults, as a user's:
#   cmake -DPREFIX=... -DSOURCE_DIR=... -DWORK_DIR=... [-DBUILD_TYPE=Release] -P run.cmake
function(run)
  execute_process(COMMAND ${ARGN} RESULT_VARIABLE rc)
  if(NOT rc EQUAL 0)
    list(JOIN ARGN " " command)
    message(FATAL_ERROR "failed (${rc}): ${command}")
  endif()
endfunction()

file(REMOVE_RECURSE ${WORK_DIR})
if(PREFIX)
  set(prefix ${PREFIX})
else()
  set(prefix ${WORK_DIR}/prefix)
  run(${CMAKE_COMMAND} --install ${BUILD_DIR} --prefix ${prefix})
endif()

set(consumer_build ${WORK_DIR}/build)
set(flags)
if(GENERATOR)
  list(APPEND flags -G ${GENERATOR})
endif()
foreach(setting MAKE_PROGRAM CXX_COMPILER BUILD_TYPE)
  if(${setting})
    list(APPEND flags -DCMAKE_${setting}=${${setting}})
  endif()
endforeach()
if(SANITIZE)
  string(REPLACE ";" "," SANITIZE "${SANITIZE}")
  list(APPEND flags -DCMAKE_CXX_FLAGS=-fsanitize=${SANITIZE}
       -DCMAKE_EXE_LINKER_FLAGS=-fsanitize=${SANITIZE})
endif()
run(${CMAKE_COMMAND} -S ${SOURCE_DIR}/tests/cpp/consumer -B ${consumer_build}
    -DCMAKE_PREFIX_PATH=${prefix} -DCMAKE_EXPORT_COMPILE_COMMANDS=ON ${flags})
run(${CMAKE_COMMAND} --build ${consumer_build})

# The headers must come from the prefix, not from this source tree.
file(READ ${consumer_build}/compile_commands.json commands)
string(FIND "${commands}" "${SOURCE_DIR}/include" in_source)
if(NOT in_source EQUAL -1)
  message(FATAL_ERROR "the consumer was compiled with the source tree's headers")
endif()
string(FIND "${commands}" "${prefix}/include" in_prefix)
if(in_prefix EQUAL -1)
  message(FATAL_ERROR "the consumer was not compiled with the installed headers")
endif()

run(${consumer_build}/consumer)
message(STATUS "the consumer built against ${prefix} ran and returned 0")
