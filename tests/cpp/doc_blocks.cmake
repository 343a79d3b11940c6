# The C++ blocks of README.md and docs/*.md (tests/python/doc_blocks.py finds them):
# each is compiled against interpool::interpool as a user's program would be; a
# whole program is also run by ctest (DocBlock.<page>:<line>), a ```cpp fragment
# is compiled and linked only. Compiler messages point at the page's lines.
# tests/python/test_docs.py checks that every block is registered here.
file(GLOB _doc_pages CONFIGURE_DEPENDS
     ${PROJECT_SOURCE_DIR}/README.md ${PROJECT_SOURCE_DIR}/docs/*.md)
set(_doc_script ${PROJECT_SOURCE_DIR}/tests/python/doc_blocks.py)
set_property(DIRECTORY APPEND PROPERTY CMAKE_CONFIGURE_DEPENDS ${_doc_pages} ${_doc_script})
set(_doc_out ${CMAKE_CURRENT_BINARY_DIR}/doc_blocks)
execute_process(
  COMMAND "${Python_EXECUTABLE}" ${_doc_script} cpp --root ${PROJECT_SOURCE_DIR} --out ${_doc_out}
  RESULT_VARIABLE _doc_rc OUTPUT_VARIABLE _doc_found ERROR_VARIABLE _doc_error)
if(NOT _doc_rc EQUAL 0)
  message(FATAL_ERROR "the C++ blocks of the docs: ${_doc_error}")
endif()

set(_doc_built "{\n")
function(interpool_doc_block target kind source test)
  add_executable(${target} ${source})
  target_link_libraries(${target} PRIVATE interpool::interpool interpool_warnings)
  if(kind STREQUAL "program")
    add_test(NAME ${test} COMMAND ${target})
    # Programs may use the Python package (engine objects), as once installed.
    set_tests_properties(${test} PROPERTIES TIMEOUT 120
                         ENVIRONMENT "PYTHONPATH=${INTERPOOL_STAGED_PYTHON}")
    add_dependencies(${target} interpool_python_staged)
  endif()
  set(_doc_built "${_doc_built}  \"${target}\": \"$<TARGET_FILE:${target}>\",\n" PARENT_SCOPE)
endfunction()
include(${_doc_out}/blocks.cmake)
# Where each block's binary is (test_docs.py checks it was built after its source).
string(APPEND _doc_built "  \"\": \"\"\n}\n")
file(GENERATE OUTPUT ${_doc_out}/built.json CONTENT "${_doc_built}")
