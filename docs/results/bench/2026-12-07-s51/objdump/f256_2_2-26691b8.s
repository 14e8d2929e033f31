0000000000000460 <f256_2_2>:
     460:	push   %rbp
     461:	mov    %rdi,%rax
     464:	mov    %rdx,%rdi
     467:	vmovaps %xmm0,%xmm13
     46b:	shl    $0x6,%rdi
     46f:	mov    %rsp,%rbp
     472:	push   %r15
     474:	mov    %r9d,%r15d
     477:	mov    %rdi,%r9
     47a:	push   %r14
     47c:	push   %r13
     47e:	push   %r12
     480:	push   %rbx
     481:	and    $0xffffffffffffffe0,%rsp
     485:	mov    %rsi,-0x10(%rsp)
     48a:	mov    0x20(%rbp),%r10
     48e:	mov    0x28(%rbp),%r13
     492:	mov    0x40(%rbp),%r11
     496:	mov    0x18(%rbp),%rsi
     49a:	add    %r10,%r13
     49d:	mov    %r10,%rdi
     4a0:	shl    $0x4,%r10
     4a4:	mov    0x30(%rbp),%rdx
     4a8:	imul   %r9,%rdi
     4ac:	mov    %r11,%rbx
     4af:	mov    0x38(%rbp),%r14
     4b3:	imul   %r13,%r9
     4b7:	sub    %r10,%rbx
     4ba:	add    %rsi,%rdi
     4bd:	add    %r9,%rsi
     4c0:	mov    $0x10,%r9d
     4c6:	cmp    %r9,%rbx
     4c9:	cmovle %rbx,%r9
     4cd:	cmp    $0x7,%rbx
     4d1:	jg     708 <f256_2_2+0x2a8>
     4d7:	vmovd  %r9d,%xmm12
     4dc:	vmovdqa 0x0(%rip),%ymm2        # 4e4 <f256_2_2+0x84>
     4e4:	xor    %r9d,%r9d
     4e7:	vpbroadcastd %xmm12,%ymm12
     4ec:	vpcmpgtd %ymm2,%ymm12,%ymm12
     4f0:	lea    (%rdx,%r10,4),%r12
     4f4:	lea    0x20(%rdx,%r10,4),%rbx
     4f9:	vmovd  %r9d,%xmm9
     4fe:	add    %r14,%r10
     501:	shl    $0x2,%r10
     505:	vpbroadcastd %xmm9,%ymm9
     50a:	lea    (%rdx,%r10,1),%r9
     50e:	lea    0x20(%rdx,%r10,1),%r10
     513:	vpcmpgtd %ymm2,%ymm9,%ymm9
     517:	mov    %r10,-0x8(%rsp)
     51c:	test   %r15d,%r15d
     51f:	jne    6f0 <f256_2_2+0x290>
     525:	vmaskmovps (%r12),%ymm12,%ymm8
     52b:	vmaskmovps (%rbx),%ymm9,%ymm7
     530:	vmaskmovps (%r9),%ymm12,%ymm1
     535:	vmaskmovps (%r10),%ymm9,%ymm0
     53a:	shl    $0x4,%r13
     53e:	mov    $0x10,%r10d
     544:	sub    %r13,%r11
     547:	cmp    %r10,%r11
     54a:	cmovle %r11,%r10
     54e:	cmp    $0x7,%r11
     552:	jg     728 <f256_2_2+0x2c8>
     558:	vmovd  %r10d,%xmm11
     55d:	xor    %r10d,%r10d
     560:	vpbroadcastd %xmm11,%ymm11
     565:	vpcmpgtd %ymm2,%ymm11,%ymm11
     569:	vmovd  %r10d,%xmm10
     56e:	lea    (%rdx,%r13,4),%r11
     572:	lea    0x20(%rdx,%r13,4),%r10
     577:	add    %r14,%r13
     57a:	shl    $0x2,%r13
     57e:	vpbroadcastd %xmm10,%ymm10
     583:	lea    (%rdx,%r13,1),%r14
     587:	vpcmpgtd %ymm2,%ymm10,%ymm10
     58b:	lea    0x20(%rdx,%r13,1),%r13
     590:	test   %r15d,%r15d
     593:	jne    6d8 <f256_2_2+0x278>
     599:	vmaskmovps (%r11),%ymm11,%ymm6
     59e:	vmaskmovps (%r10),%ymm10,%ymm5
     5a3:	vmaskmovps (%r14),%ymm11,%ymm2
     5a8:	vmaskmovps 0x0(%r13),%ymm10,%ymm3
     5ae:	cmp    %r8,%rcx
     5b1:	jge    644 <f256_2_2+0x1e4>
     5b7:	mov    -0x10(%rsp),%r15
     5bc:	lea    (%rax,%rcx,4),%rdx
     5c0:	lea    0x20(%rcx),%rax
     5c4:	shl    $0x6,%rax
     5c8:	shl    $0x2,%r15
     5cc:	nopl   0x0(%rax)
     5d0:	add    $0x1,%rcx
     5d4:	vbroadcastss (%rdx),%ymm4
     5d9:	prefetcht0 (%rdi,%rax,1)
     5dd:	prefetcht0 (%rsi,%rax,1)
     5e1:	vfmadd231ps -0x800(%rdi,%rax,1),%ymm4,%ymm8
     5eb:	vfmadd231ps -0x7e0(%rdi,%rax,1),%ymm4,%ymm7
     5f5:	vfmadd231ps -0x800(%rsi,%rax,1),%ymm4,%ymm6
     5ff:	vfmadd231ps -0x7e0(%rsi,%rax,1),%ymm4,%ymm5
     609:	vbroadcastss (%r15,%rdx,1),%ymm4
     60f:	add    $0x4,%rdx
     613:	vfmadd231ps -0x800(%rdi,%rax,1),%ymm4,%ymm1
     61d:	vfmadd231ps -0x7e0(%rdi,%rax,1),%ymm4,%ymm0
     627:	vfmadd231ps -0x800(%rsi,%rax,1),%ymm4,%ymm2
     631:	vfmadd231ps -0x7e0(%rsi,%rax,1),%ymm4,%ymm3
     63b:	add    $0x40,%rax
     63f:	cmp    %rcx,%r8
     642:	jne    5d0 <f256_2_2+0x170>
     644:	mov    0x10(%rbp),%eax
     647:	test   %eax,%eax
     649:	je     740 <f256_2_2+0x2e0>
     64f:	vucomiss 0x0(%rip),%xmm13        # 657 <f256_2_2+0x1f7>
     657:	mov    $0x1,%edx
     65c:	setp   %al
     65f:	cmovne %edx,%eax
     662:	test   %al,%al
     664:	je     740 <f256_2_2+0x2e0>
     66a:	vbroadcastss %xmm13,%ymm4
     66f:	vmulps %ymm8,%ymm4,%ymm8
     674:	vmulps %ymm4,%ymm7,%ymm7
     678:	vmulps %ymm1,%ymm4,%ymm1
     67c:	vmulps %ymm0,%ymm4,%ymm0
     680:	vmulps %ymm6,%ymm4,%ymm6
     684:	vmulps %ymm5,%ymm4,%ymm5
     688:	vmaskmovps %ymm8,%ymm12,(%r12)
     68e:	vmulps %ymm4,%ymm2,%ymm2
     692:	vmaskmovps %ymm7,%ymm9,(%rbx)
     697:	vmulps %ymm4,%ymm3,%ymm3
     69b:	vmaskmovps %ymm1,%ymm12,(%r9)
     6a0:	mov    -0x8(%rsp),%rax
     6a5:	vmaskmovps %ymm0,%ymm9,(%rax)
     6aa:	vmaskmovps %ymm6,%ymm11,(%r11)
     6af:	vmaskmovps %ymm5,%ymm10,(%r10)
     6b4:	vmaskmovps %ymm2,%ymm11,(%r14)
     6b9:	vmaskmovps %ymm3,%ymm10,0x0(%r13)
     6bf:	vzeroupper
     6c2:	lea    -0x28(%rbp),%rsp
     6c6:	pop    %rbx
     6c7:	pop    %r12
     6c9:	pop    %r13
     6cb:	pop    %r14
     6cd:	pop    %r15
     6cf:	pop    %rbp
     6d0:	ret
     6d1:	nopl   0x0(%rax)
     6d8:	vxorps %xmm2,%xmm2,%xmm2
     6dc:	vmovaps %ymm2,%ymm5
     6e0:	vmovaps %ymm2,%ymm6
     6e4:	vmovaps %ymm2,%ymm3
     6e8:	jmp    5ae <f256_2_2+0x14e>
     6ed:	nopl   (%rax)
     6f0:	vxorps %xmm1,%xmm1,%xmm1
     6f4:	vmovaps %ymm1,%ymm7
     6f8:	vmovaps %ymm1,%ymm8
     6fc:	vmovaps %ymm1,%ymm0
     700:	jmp    53a <f256_2_2+0xda>
     705:	nopl   (%rax)
     708:	cmp    $0x8,%rbx
     70c:	je     776 <f256_2_2+0x316>
     70e:	vmovdqa 0x0(%rip),%ymm2        # 716 <f256_2_2+0x2b6>
     716:	sub    $0x8,%r9d
     71a:	vpcmpeqd %ymm12,%ymm12,%ymm12
     71f:	jmp    4f0 <f256_2_2+0x90>
     724:	nopl   0x0(%rax)
     728:	cmp    $0x8,%r11
     72c:	je     769 <f256_2_2+0x309>
     72e:	sub    $0x8,%r10d
     732:	vpcmpeqd %ymm11,%ymm11,%ymm11
     737:	jmp    569 <f256_2_2+0x109>
     73c:	nopl   0x0(%rax)
     740:	vmaskmovps %ymm8,%ymm12,(%r12)
     746:	vmaskmovps %ymm7,%ymm9,(%rbx)
     74b:	vmaskmovps %ymm1,%ymm12,(%r9)
     750:	mov    -0x8(%rsp),%rax
     755:	vmaskmovps %ymm0,%ymm9,(%rax)
     75a:	vmaskmovps %ymm6,%ymm11,(%r11)
     75f:	vmaskmovps %ymm5,%ymm10,(%r10)
     764:	jmp    6b4 <f256_2_2+0x254>
     769:	vpcmpeqd %ymm11,%ymm11,%ymm11
     76e:	xor    %r10d,%r10d
     771:	jmp    569 <f256_2_2+0x109>
     776:	vmovdqa 0x0(%rip),%ymm2        # 77e <f256_2_2+0x31e>
     77e:	vpcmpeqd %ymm12,%ymm12,%ymm12
     783:	xor    %r9d,%r9d
     786:	jmp    4f0 <f256_2_2+0x90>
     78b:	nopl   0x0(%rax,%rax,1)

