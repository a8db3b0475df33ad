async def test_live_answers_pass(client):
    resp = await client.get("/api/health/live")
    assert resp.status == 200
    assert await resp.json() == {"status": "pass"}
