"""The LangChain integration with the real langchain-core and langgraph (issue 16): every
invocation path is authorized, the wrapped tool is never reached around the check, ToolCalls
are unwrapped, the principal can come from the RunnableConfig, and a deny is an error message
the agent reads, not an exception out of the run."""

import asyncio

import pytest
from langchain_core.messages import AIMessage, ToolMessage
from langchain_core.tools import BaseTool, tool
from langchain_core.utils.function_calling import convert_to_openai_tool

import ambit
from ambit.integrations.langchain import guard_tool

SERVICE = 'Helpdesk::Service::"helpdesk"'
ACME = {"tenant": {"__entity": {"type": "Helpdesk::Tenant", "id": "acme"}}}


@pytest.fixture
def authz(helpdesk):
    return ambit.Authorizer.from_dir(helpdesk)


@pytest.fixture
def agent(authz):
    return authz.mint_agent(SERVICE, "ticket-4711", ["issue_refund"], 900, attributes=ACME)


class Recorded:
    """A real tool and the amounts it was called with."""

    def __init__(self):
        self.calls = []

        @tool
        def issue_refund(ticket: str, amount: int) -> str:
            """Refund part of a ticket's payment."""
            self.calls.append(amount)
            return f"refunded {amount} on {ticket}"

        self.tool = issue_refund


@pytest.fixture
def recorded():
    return Recorded()


@pytest.fixture
def refund(recorded):
    return recorded.tool


def guarded(tool_, authz, principal):
    # no context=: the default is the arguments issue_refund's context declares ({amount}),
    # never the whole input (the ticket is not a context attribute)
    return guard_tool(
        tool_, authz, principal=principal,
        resource=lambda a: f'Helpdesk::Ticket::"{a["ticket"]}"',
    )


ALLOWED = {"ticket": "4711", "amount": 120}
DENIED = {"ticket": "4711", "amount": 900}  # over the agent cap: forbidden


def test_it_is_a_real_base_tool_that_models_can_bind(authz, agent, refund):
    g = guarded(refund, authz, agent.uid)
    assert isinstance(g, BaseTool)
    assert g.name == "issue_refund" and g.description == refund.description
    spec = convert_to_openai_tool(g)
    assert spec["function"]["name"] == "issue_refund"
    assert set(spec["function"]["parameters"]["properties"]) == {"ticket", "amount"}


@pytest.mark.parametrize(
    "path",
    [
        lambda g, i: g.invoke(i),
        lambda g, i: asyncio.run(g.ainvoke(i)),
        lambda g, i: g.batch([i])[0],
        lambda g, i: asyncio.run(g.abatch([i]))[0],
        lambda g, i: list(g.stream(i))[-1],
        lambda g, i: asyncio.run(_collect(g.astream(i)))[-1],
        lambda g, i: g.run(i),
        lambda g, i: asyncio.run(g.arun(i)),
        lambda g, i: g.with_config(tags=["x"]).invoke(i),
        lambda g, i: g.with_retry().invoke(i),
    ],
)
def test_every_invocation_path_is_authorized(authz, agent, refund, recorded, path):
    g = guarded(refund, authz, agent.uid)
    assert path(g, ALLOWED) == "refunded 120 on 4711"
    out = path(g, DENIED)
    assert "denied (forbidden)" in out and "agent-refund-cap" in out
    assert recorded.calls == [120], "the denied call never reached the tool"


async def _collect(aiter):
    return [x async for x in aiter]


def test_a_tool_call_is_unwrapped_and_a_deny_is_an_error_tool_message(authz, agent, refund, recorded):
    g = guarded(refund, authz, agent.uid)
    ok = g.invoke({"name": "issue_refund", "args": ALLOWED, "id": "c1", "type": "tool_call"})
    assert isinstance(ok, ToolMessage) and ok.content == "refunded 120 on 4711" and ok.status == "success"
    no = g.invoke({"name": "issue_refund", "args": DENIED, "id": "c2", "type": "tool_call"})
    assert isinstance(no, ToolMessage) and no.status == "error" and "agent-refund-cap" in no.content
    assert recorded.calls == [120]


def test_the_principal_comes_from_the_runnable_config(authz, agent, refund, recorded):
    g = guard_tool(refund, authz, resource='Helpdesk::Ticket::"4711"', context=lambda a: {"amount": a["amount"]})
    assert g.invoke(ALLOWED, {"configurable": {"ambit_principal": agent.uid}}) == "refunded 120 on 4711"
    # no principal anywhere: an error, so a deny; never a call
    assert "denied" in g.invoke(ALLOWED)
    by_config = guard_tool(refund, authz, resource='Helpdesk::Ticket::"4711"',
                           principal=lambda args, config: config["configurable"]["user"],
                           context=lambda a: {"amount": a["amount"]})
    assert "denied" in by_config.invoke(ALLOWED, {"configurable": {"user": 'Helpdesk::User::"carol"'}})
    assert recorded.calls == [120]


def test_on_deny_raise_raises_denied(authz, agent, refund, recorded):
    g = guard_tool(refund, authz, principal=agent.uid, resource='Helpdesk::Ticket::"4711"',
                   context=lambda a: {"amount": a["amount"]}, on_deny="raise")
    with pytest.raises(ambit.AmbitDenied) as e:
        g.invoke(DENIED)
    assert e.value.code == "AMBIT_DENIED" and e.value.decision.reasons == ["agent-refund-cap"]
    assert recorded.calls == []


def test_langgraph_tool_node_gets_the_deny_as_a_message(authz, agent, refund, recorded):
    from langgraph.graph import END, START, MessagesState, StateGraph
    from langgraph.prebuilt import ToolNode

    graph = StateGraph(MessagesState)
    graph.add_node("tools", ToolNode([guarded(refund, authz, agent.uid)]))
    graph.add_edge(START, "tools")
    graph.add_edge("tools", END)
    calls = [
        {"name": "issue_refund", "args": ALLOWED, "id": "a", "type": "tool_call"},
        {"name": "issue_refund", "args": DENIED, "id": "b", "type": "tool_call"},
    ]
    out = graph.compile().invoke({"messages": [AIMessage(content="", tool_calls=calls)]})
    by_id = {m.tool_call_id: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert by_id["a"].content == "refunded 120 on 4711"
    assert by_id["b"].status == "error" and "agent-refund-cap" in by_id["b"].content
    assert recorded.calls == [120]


def test_only_base_tools_are_wrapped(authz, agent):
    with pytest.raises(TypeError):
        guard_tool(object(), authz, principal=agent.uid, resource='Helpdesk::Ticket::"4711"')


def test_a_langgraph_react_agent_runs_the_allowed_call_and_reads_the_deny(authz, agent, refund, recorded):
    """A ReAct agent (LangGraph's create_react_agent) driven by langchain-core's fake chat model:
    the principal comes from the run's config, the allowed refund runs, the denied one never
    does, and the model's next turn sees the deny's cause and policy as a tool error."""
    import warnings

    from langchain_core.language_models.fake_chat_models import GenericFakeChatModel

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # create_react_agent is deprecated in favour of langchain.agents
        from langgraph.prebuilt import create_react_agent

    seen = []

    class Model(GenericFakeChatModel):
        def bind_tools(self, tools, **kwargs):
            return self

        def _generate(self, messages, stop=None, run_manager=None, **kwargs):
            seen.append(list(messages))
            return super()._generate(messages, stop=stop, run_manager=run_manager, **kwargs)

    turns = iter([
        AIMessage(content="", tool_calls=[{"name": "issue_refund", "args": ALLOWED, "id": "a", "type": "tool_call"}]),
        AIMessage(content="", tool_calls=[{"name": "issue_refund", "args": DENIED, "id": "b", "type": "tool_call"}]),
        AIMessage(content="done"),
    ])
    # no principal=: it is the run's configurable ambit_principal
    tool_ = guard_tool(refund, authz, resource=lambda a: f'Helpdesk::Ticket::"{a["ticket"]}"')
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = create_react_agent(Model(messages=turns), [tool_])
    out = graph.invoke(
        {"messages": [("user", "refund ticket 4711")]},
        config={"configurable": {"ambit_principal": agent.uid}},
    )
    assert out["messages"][-1].content == "done"
    assert recorded.calls == [120]
    results = {m.tool_call_id: m for m in out["messages"] if isinstance(m, ToolMessage)}
    assert results["a"].content == "refunded 120 on 4711" and results["a"].status == "success"
    assert results["b"].status == "error"
    # the model's last turn was shown the deny: cause and the policy that decided
    last = [m for m in seen[-1] if isinstance(m, ToolMessage) and m.tool_call_id == "b"]
    assert last and "forbidden" in last[0].content and "agent-refund-cap" in last[0].content

    # without a principal in the config the call is refused, and still never runs
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        graph = create_react_agent(
            Model(messages=iter([
                AIMessage(content="", tool_calls=[{"name": "issue_refund", "args": ALLOWED, "id": "c", "type": "tool_call"}]),
                AIMessage(content="done"),
            ])),
            [tool_],
        )
    out = graph.invoke({"messages": [("user", "refund")]})
    assert recorded.calls == [120]
    assert [m.status for m in out["messages"] if isinstance(m, ToolMessage)] == ["error"]
