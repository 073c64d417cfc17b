# SPDX-License-Identifier: (LGPL-2.1 OR BSD-2-Clause)
# sgc_bpf_object(NAME SRC [INCLUDES dir...])
#   Compiles SRC with clang -target bpf into NAME.bpf.o and generates
#   NAME.skel.h with bpftool; defines the interface target NAME_skel whose
#   include directory holds the skeleton.
find_program(SGC_CLANG NAMES clang clang-14 REQUIRED)
find_program(SGC_BPFTOOL NAMES bpftool PATHS /usr/sbin /sbin REQUIRED)
execute_process(COMMAND uname -m OUTPUT_VARIABLE SGC_UNAME_M OUTPUT_STRIP_TRAILING_WHITESPACE)
set(SGC_BPF_ARCH_INC /usr/include/${SGC_UNAME_M}-linux-gnu)

function(sgc_bpf_object name src)
  cmake_parse_arguments(ARG "" "" "INCLUDES;DEPENDS" ${ARGN})
  set(out_dir ${CMAKE_CURRENT_BINARY_DIR}/${name}_skel)
  set(obj ${out_dir}/${name}.bpf.o)
  set(skel ${out_dir}/${name}.skel.h)
  set(incs -I${CMAKE_SOURCE_DIR}/libsgcoll/include -I${CMAKE_SOURCE_DIR}/libsgcoll/bpf
           -I${SGC_BPF_ARCH_INC})
  foreach(d ${ARG_INCLUDES})
    list(APPEND incs -I${d})
  endforeach()
  get_filename_component(abs_src ${src} ABSOLUTE)
  # IMPLICIT_DEPENDS does not search the -I directories above, so a change
  # to the wire header left the objects stale: name the shared headers.
  file(GLOB shared_hdrs ${CMAKE_SOURCE_DIR}/libsgcoll/include/sgcoll/*.h
       ${CMAKE_SOURCE_DIR}/libsgcoll/bpf/*.h)
  add_custom_command(
    OUTPUT ${obj}
    COMMAND ${CMAKE_COMMAND} -E make_directory ${out_dir}
    COMMAND ${SGC_CLANG} -g -O2 -target bpf -mcpu=v3 -D__TARGET_ARCH_x86 -Wall -Werror
            ${incs} -c ${abs_src} -o ${obj}
    DEPENDS ${abs_src} ${shared_hdrs} ${ARG_DEPENDS}
    IMPLICIT_DEPENDS C ${abs_src}
    COMMENT "BPF ${name}"
    VERBATIM)
  add_custom_command(
    OUTPUT ${skel}
    COMMAND sh -c "${SGC_BPFTOOL} gen skeleton ${obj} name ${name} > ${skel}.tmp && mv ${skel}.tmp ${skel}"
    DEPENDS ${obj}
    COMMENT "skeleton ${name}"
    VERBATIM)
  add_custom_target(${name}_skel_gen DEPENDS ${skel})
  add_library(${name}_skel INTERFACE)
  target_include_directories(${name}_skel INTERFACE ${out_dir})
  add_dependencies(${name}_skel ${name}_skel_gen)
endfunction()
