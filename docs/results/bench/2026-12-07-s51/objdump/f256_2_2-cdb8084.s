0000000000000700 <f256_2_2>:
     700:	push   %rbp
     701:	shl    $0x6,%rdx
     705:	vmovaps %xmm0,%xmm9
     709:	mov    %rsp,%rbp
     70c:	push   %r15
     70e:	push   %r14
     710:	push   %r13
     712:	push   %r12
     714:	push   %rbx
     715:	and    $0xffffffffffffffe0,%rsp
     719:	mov    %rdi,-0x28(%rsp)
     71e:	mov    0x20(%rbp),%r10
     722:	mov    0x28(%rbp),%rbx
     726:	mov    %rsi,-0x30(%rsp)
     72b:	mov    0x18(%rbp),%rsi
     72f:	mov    0x40(%rbp),%r11
     733:	add    %r10,%rbx
     736:	mov    %r10,%rdi
     739:	mov    0x30(%rbp),%r12
     73d:	imul   %rdx,%rdi
     741:	imul   %rbx,%rdx
     745:	add    %rsi,%rdi
     748:	lea    (%rsi,%rdx,1),%rax
     74c:	mov    %r10,%rdx
     74f:	shl    $0x4,%rdx
     753:	mov    %rax,-0x20(%rsp)
     758:	mov    $0x10,%eax
     75d:	sub    %rdx,%r11
     760:	lea    0x20(%r12,%rdx,4),%r15
     765:	cmp    %rax,%r11
     768:	cmovle %r11,%rax
     76c:	shl    $0x6,%r10
     770:	add    0x38(%rbp),%rdx
     774:	lea    (%r12,%r10,1),%r14
     778:	shl    $0x2,%rdx
     77c:	mov    %r14,-0x10(%rsp)
     781:	lea    0x20(%r12,%rdx,1),%r13
     786:	lea    (%r12,%rdx,1),%r14
     78a:	cmp    $0x7,%r11
     78e:	jg     980 <f256_2_2+0x280>
     794:	vmovd  %eax,%xmm12
     798:	vpxor  %xmm11,%xmm11,%xmm11
     79d:	vpbroadcastd %xmm12,%ymm12
     7a2:	vpcmpgtd 0x0(%rip),%ymm12,%ymm12        # 7aa <f256_2_2+0xaa>
     7aa:	test   %r9d,%r9d
     7ad:	je     b24 <f256_2_2+0x424>
     7b3:	vxorps %xmm3,%xmm3,%xmm3
     7b7:	vmovaps %ymm3,%ymm5
     7bb:	vmovaps %ymm3,%ymm6
     7bf:	vmovaps %ymm3,%ymm2
     7c3:	mov    %rbx,%rdx
     7c6:	mov    0x40(%rbp),%r10
     7ca:	mov    $0x10,%eax
     7cf:	shl    $0x4,%rdx
     7d3:	sub    %rdx,%r10
     7d6:	cmp    %rax,%r10
     7d9:	cmovle %r10,%rax
     7dd:	shl    $0x6,%rbx
     7e1:	add    %r12,%rbx
     7e4:	mov    %rbx,-0x8(%rsp)
     7e9:	lea    0x20(%r12,%rdx,4),%rbx
     7ee:	add    0x38(%rbp),%rdx
     7f2:	shl    $0x2,%rdx
     7f6:	lea    (%r12,%rdx,1),%rsi
     7fa:	lea    0x20(%r12,%rdx,1),%r12
     7ff:	mov    %rsi,-0x18(%rsp)
     804:	cmp    $0x7,%r10
     808:	jg     9d8 <f256_2_2+0x2d8>
     80e:	vmovd  %eax,%xmm13
     812:	vpbroadcastd %xmm13,%ymm13
     817:	vpcmpgtd 0x0(%rip),%ymm13,%ymm13        # 81f <f256_2_2+0x11f>
     81f:	test   %r9d,%r9d
     822:	jne    a2b <f256_2_2+0x32b>
     828:	mov    -0x8(%rsp),%rax
     82d:	vpxor  %xmm10,%xmm10,%xmm10
     832:	vmaskmovps (%rax),%ymm13,%ymm7
     837:	mov    -0x18(%rsp),%rax
     83c:	vmaskmovps (%rbx),%ymm10,%ymm8
     841:	vmaskmovps (%r12),%ymm10,%ymm0
     847:	vmaskmovps (%rax),%ymm13,%ymm1
     84c:	cmp    %r8,%rcx
     84f:	jge    8ec <f256_2_2+0x1ec>
     855:	mov    -0x28(%rsp),%rax
     85a:	mov    -0x30(%rsp),%r9
     85f:	mov    -0x20(%rsp),%rsi
     864:	lea    (%rax,%rcx,4),%rdx
     868:	lea    0x20(%rcx),%rax
     86c:	shl    $0x2,%r9
     870:	shl    $0x6,%rax
     874:	nopl   0x0(%rax)
     878:	add    $0x1,%rcx
     87c:	vbroadcastss (%rdx),%ymm4
     881:	prefetcht0 (%rdi,%rax,1)
     885:	prefetcht0 (%rsi,%rax,1)
     889:	vfmadd231ps -0x800(%rdi,%rax,1),%ymm4,%ymm6
     893:	vfmadd231ps -0x7e0(%rdi,%rax,1),%ymm4,%ymm5
     89d:	vfmadd231ps -0x800(%rsi,%rax,1),%ymm4,%ymm7
     8a7:	vfmadd231ps -0x7e0(%rsi,%rax,1),%ymm4,%ymm8
     8b1:	vbroadcastss (%r9,%rdx,1),%ymm4
     8b7:	add    $0x4,%rdx
     8bb:	vfmadd231ps -0x800(%rdi,%rax,1),%ymm4,%ymm3
     8c5:	vfmadd231ps -0x7e0(%rdi,%rax,1),%ymm4,%ymm2
     8cf:	vfmadd231ps -0x800(%rsi,%rax,1),%ymm4,%ymm1
     8d9:	vfmadd231ps -0x7e0(%rsi,%rax,1),%ymm4,%ymm0
     8e3:	add    $0x40,%rax
     8e7:	cmp    %rcx,%r8
     8ea:	jne    878 <f256_2_2+0x178>
     8ec:	mov    0x10(%rbp),%eax
     8ef:	mov    $0x1,%ecx
     8f4:	vbroadcastss %xmm9,%ymm4
     8f9:	test   %eax,%eax
     8fb:	setne  %dl
     8fe:	vucomiss 0x0(%rip),%xmm9        # 906 <f256_2_2+0x206>
     906:	setp   %al
     909:	cmovne %ecx,%eax
     90c:	and    %al,%dl
     90e:	je     a50 <f256_2_2+0x350>
     914:	vmulps %ymm4,%ymm6,%ymm6
     918:	vmulps %ymm4,%ymm5,%ymm5
     91c:	cmp    $0xf,%r11
     920:	jle    ad7 <f256_2_2+0x3d7>
     926:	vmulps %ymm4,%ymm3,%ymm3
     92a:	vmulps %ymm4,%ymm2,%ymm2
     92e:	mov    -0x10(%rsp),%rax
     933:	vmovups %ymm6,(%rax)
     937:	vmovups %ymm5,(%r15)
     93c:	vmovups %ymm3,(%r14)
     941:	vmovups %ymm2,0x0(%r13)
     947:	cmp    $0x8,%r10
     94b:	jg     aab <f256_2_2+0x3ab>
     951:	test   %dl,%dl
     953:	je     a7a <f256_2_2+0x37a>
     959:	vmulps %ymm7,%ymm4,%ymm7
     95d:	vmulps %ymm8,%ymm4,%ymm8
     962:	mov    -0x8(%rsp),%rax
     967:	vmaskmovps %ymm7,%ymm13,(%rax)
     96c:	vmaskmovps %ymm8,%ymm10,(%rbx)
     971:	vmulps %ymm4,%ymm1,%ymm1
     975:	vmulps %ymm4,%ymm0,%ymm0
     979:	jmp    a89 <f256_2_2+0x389>
     97e:	xchg   %ax,%ax
     980:	cmp    $0x8,%r11
     984:	je     b53 <f256_2_2+0x453>
     98a:	sub    $0x8,%eax
     98d:	vmovd  %eax,%xmm11
     991:	vpbroadcastd %xmm11,%ymm11
     996:	vpcmpgtd 0x0(%rip),%ymm11,%ymm11        # 99e <f256_2_2+0x29e>
     99e:	test   %r9d,%r9d
     9a1:	jne    b43 <f256_2_2+0x443>
     9a7:	cmp    $0xf,%r11
     9ab:	jle    b1f <f256_2_2+0x41f>
     9b1:	mov    -0x10(%rsp),%rax
     9b6:	vmovups (%r15),%ymm5
     9bb:	vpcmpeqd %ymm12,%ymm12,%ymm12
     9c0:	vmovups (%r14),%ymm3
     9c5:	vmovups 0x0(%r13),%ymm2
     9cb:	vmovups (%rax),%ymm6
     9cf:	jmp    7c3 <f256_2_2+0xc3>
     9d4:	nopl   0x0(%rax)
     9d8:	cmp    $0x8,%r10
     9dc:	je     b67 <f256_2_2+0x467>
     9e2:	sub    $0x8,%eax
     9e5:	vmovd  %eax,%xmm10
     9e9:	vpbroadcastd %xmm10,%ymm10
     9ee:	vpcmpgtd 0x0(%rip),%ymm10,%ymm10        # 9f6 <f256_2_2+0x2f6>
     9f6:	test   %r9d,%r9d
     9f9:	jne    a45 <f256_2_2+0x345>
     9fb:	cmp    $0xf,%r10
     9ff:	jle    b87 <f256_2_2+0x487>
     a05:	mov    -0x8(%rsp),%rax
     a0a:	vmovups (%rbx),%ymm8
     a0e:	vpcmpeqd %ymm13,%ymm13,%ymm13
     a13:	vmovups (%r12),%ymm0
     a19:	vmovups (%rax),%ymm7
     a1d:	mov    -0x18(%rsp),%rax
     a22:	vmovups (%rax),%ymm1
     a26:	jmp    84c <f256_2_2+0x14c>
     a2b:	vpxor  %xmm10,%xmm10,%xmm10
     a30:	vxorps %xmm1,%xmm1,%xmm1
     a34:	vmovaps %ymm1,%ymm8
     a38:	vmovaps %ymm1,%ymm7
     a3c:	vmovaps %ymm1,%ymm0
     a40:	jmp    84c <f256_2_2+0x14c>
     a45:	vpcmpeqd %ymm13,%ymm13,%ymm13
     a4a:	jmp    a30 <f256_2_2+0x330>
     a4c:	nopl   0x0(%rax)
     a50:	cmp    $0xf,%r11
     a54:	jg     92e <f256_2_2+0x22e>
     a5a:	mov    -0x10(%rsp),%rax
     a5f:	vmaskmovps %ymm6,%ymm12,(%rax)
     a64:	vmaskmovps %ymm5,%ymm11,(%r15)
     a69:	vmaskmovps %ymm3,%ymm12,(%r14)
     a6e:	vmaskmovps %ymm2,%ymm11,0x0(%r13)
     a74:	cmp    $0x8,%r10
     a78:	jg     ab3 <f256_2_2+0x3b3>
     a7a:	mov    -0x8(%rsp),%rax
     a7f:	vmaskmovps %ymm7,%ymm13,(%rax)
     a84:	vmaskmovps %ymm8,%ymm10,(%rbx)
     a89:	mov    -0x18(%rsp),%rax
     a8e:	vmaskmovps %ymm1,%ymm13,(%rax)
     a93:	vmaskmovps %ymm0,%ymm10,(%r12)
     a99:	vzeroupper
     a9c:	lea    -0x28(%rbp),%rsp
     aa0:	pop    %rbx
     aa1:	pop    %r12
     aa3:	pop    %r13
     aa5:	pop    %r14
     aa7:	pop    %r15
     aa9:	pop    %rbp
     aaa:	ret
     aab:	test   %dl,%dl
     aad:	jne    b4d <f256_2_2+0x44d>
     ab3:	cmp    $0xf,%r10
     ab7:	jle    a7a <f256_2_2+0x37a>
     ab9:	mov    -0x8(%rsp),%rax
     abe:	vmovups %ymm7,(%rax)
     ac2:	mov    -0x18(%rsp),%rax
     ac7:	vmovups %ymm8,(%rbx)
     acb:	vmovups %ymm1,(%rax)
     acf:	vmovups %ymm0,(%r12)
     ad5:	jmp    a99 <f256_2_2+0x399>
     ad7:	vmulps %ymm3,%ymm4,%ymm3
     adb:	mov    -0x10(%rsp),%rax
     ae0:	vmulps %ymm2,%ymm4,%ymm2
     ae4:	vmaskmovps %ymm6,%ymm12,(%rax)
     ae9:	vmulps %ymm4,%ymm7,%ymm7
     aed:	vmaskmovps %ymm5,%ymm11,(%r15)
     af2:	vmaskmovps %ymm3,%ymm12,(%r14)
     af7:	vmaskmovps %ymm2,%ymm11,0x0(%r13)
     afd:	cmp    $0x8,%r10
     b01:	jle    95d <f256_2_2+0x25d>
     b07:	vmulps %ymm4,%ymm8,%ymm8
     b0b:	cmp    $0xf,%r10
     b0f:	jle    b9b <f256_2_2+0x49b>
     b15:	vmulps %ymm4,%ymm1,%ymm1
     b19:	vmulps %ymm4,%ymm0,%ymm0
     b1d:	jmp    ab9 <f256_2_2+0x3b9>
     b1f:	vpcmpeqd %ymm12,%ymm12,%ymm12
     b24:	mov    -0x10(%rsp),%rax
     b29:	vmaskmovps (%rax),%ymm12,%ymm6
     b2e:	vmaskmovps (%r15),%ymm11,%ymm5
     b33:	vmaskmovps (%r14),%ymm12,%ymm3
     b38:	vmaskmovps 0x0(%r13),%ymm11,%ymm2
     b3e:	jmp    7c3 <f256_2_2+0xc3>
     b43:	vpcmpeqd %ymm12,%ymm12,%ymm12
     b48:	jmp    7b3 <f256_2_2+0xb3>
     b4d:	vmulps %ymm4,%ymm7,%ymm7
     b51:	jmp    b07 <f256_2_2+0x407>
     b53:	test   %r9d,%r9d
     b56:	je     b71 <f256_2_2+0x471>
     b58:	vpxor  %xmm11,%xmm11,%xmm11
     b5d:	vpcmpeqd %ymm12,%ymm12,%ymm12
     b62:	jmp    7b3 <f256_2_2+0xb3>
     b67:	vpcmpeqd %ymm13,%ymm13,%ymm13
     b6c:	jmp    81f <f256_2_2+0x11f>
     b71:	mov    -0x10(%rsp),%rax
     b76:	vpcmpeqd %ymm12,%ymm12,%ymm12
     b7b:	vpxor  %xmm11,%xmm11,%xmm11
     b80:	vmaskmovps (%rax),%ymm12,%ymm6
     b85:	jmp    b2e <f256_2_2+0x42e>
     b87:	mov    -0x8(%rsp),%rax
     b8c:	vpcmpeqd %ymm13,%ymm13,%ymm13
     b91:	vmaskmovps (%rax),%ymm13,%ymm7
     b96:	jmp    837 <f256_2_2+0x137>
     b9b:	mov    -0x8(%rsp),%rax
     ba0:	vmaskmovps %ymm7,%ymm13,(%rax)
     ba5:	vmaskmovps %ymm8,%ymm10,(%rbx)
     baa:	jmp    971 <f256_2_2+0x271>
     baf:	nop

